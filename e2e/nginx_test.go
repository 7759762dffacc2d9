package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// startNginx runs real nginx with examples/nginx/edgeway.conf in front of g.
func startNginx(t *testing.T, g *Gateway) string {
	t.Helper()
	return startNginxWith(t, g, "")
}

// startNginxWith is startNginx with extra directives (such as locations)
// at the top of the server block.
func startNginxWith(t *testing.T, g *Gateway, extra string) string {
	t.Helper()
	return startNginxSite(t, g, nginxSite{extra: extra}).HTTP
}

// nginxSite says how startNginxSite sets nginx up.
type nginxSite struct {
	extra       string // directives at the top of edgeway's server block
	defaultSite bool   // the distribution's default site (default_server) beside it
	// upstreams replaces g as the upstream's servers (host:port each),
	// for several instances behind one nginx.
	upstreams []string
}

// nginxFront is a running nginx: base URLs of its plain and TLS listeners
// (both 127.0.0.1) and the pool trusting its certificate, issued by the test
// for nginxServerName.
type nginxFront struct {
	HTTP, HTTPS string
	RootCAs     *x509.CertPool
}

// nginxServerName is the example site's server_name.
const nginxServerName = "functions.example.com"

// debianDefaultSite is Debian's /etc/nginx/sites-available/default without
// its comments, used when that file is not installed.
const debianDefaultSite = `server {
	listen 80 default_server;
	listen [::]:80 default_server;
	root /var/www/html;
	index index.html index.htm index.nginx-debian.html;
	server_name _;
	location / {
		try_files $uri $uri/ =404;
	}
}
`

// startNginxSite runs real nginx with examples/nginx/edgeway.conf in front
// of g, as an operator would: its listen lines moved to free loopback ports
// (IPv6 ones dropped), its certificate paths pointed at a certificate made
// here, and, with site.defaultSite, the distribution's default site loaded
// first, as sites-enabled/default is.
func startNginxSite(t *testing.T, g *Gateway, site nginxSite) nginxFront {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			t.Fatal("nginx not installed (.ci/run installs it from apt)")
		}
		nginx = "/usr/sbin/nginx"
	}
	example, err := os.ReadFile("../examples/nginx/edgeway.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	httpPort, tlsPort := freePort(t), freePort(t)
	certFile, keyFile, pool := makeCertificate(t, dir, nginxServerName)
	conf := dropLines(string(example), "listen [::]:")
	servers := "server " + strings.TrimPrefix(g.URL, "http://") + ";"
	if len(site.upstreams) > 0 {
		servers = "server " + strings.Join(site.upstreams, ";\n    server ") + ";"
	}
	for old, repl := range map[string]string{
		"server 127.0.0.1:3100;": servers,
		"listen 80;":             "listen 127.0.0.1:" + itoa(httpPort) + ";\n" + site.extra,
		"listen 443 ssl;":        "listen 127.0.0.1:" + itoa(tlsPort) + " ssl;",
		"/etc/ssl/certs/functions.example.com.pem;":   certFile + ";",
		"/etc/ssl/private/functions.example.com.key;": keyFile + ";",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("examples/nginx/edgeway.conf has no %q any more: update the harness", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	if site.defaultSite {
		def, err := os.ReadFile("/etc/nginx/sites-available/default")
		if err != nil {
			def = []byte(debianDefaultSite)
		}
		d := dropLines(string(def), "listen [::]:")
		if !strings.Contains(d, "listen 80 default_server;") {
			t.Fatalf("the default site has no 'listen 80 default_server;':\n%s", d)
		}
		d = strings.Replace(d, "listen 80 default_server;", "listen 127.0.0.1:"+itoa(httpPort)+" default_server;", 1)
		d = strings.Replace(d, "root /var/www/html;", "root "+dir+";", 1)
		conf = d + "\n" + conf
	}
	main := "daemon off;\nmaster_process on;\nworker_processes 1;\npid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + " warn;\n" +
		"events { worker_connections 1024; }\nhttp {\n access_log off;\n client_body_temp_path " + dir + ";\n proxy_temp_path " + dir + ";\n" +
		" fastcgi_temp_path " + dir + ";\n uwsgi_temp_path " + dir + ";\n scgi_temp_path " + dir + ";\n" + conf + "\n}\n"
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(main), 0o644)
	cmd := exec.Command(nginx, "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if out, err := exec.Command(nginx, "-t", "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		cmd.Wait()
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", errLog)
		}
	})
	for _, port := range []int{httpPort, tlsPort} {
		addr := "127.0.0.1:" + itoa(port)
		deadline := time.Now().Add(eventTimeout)
		for { // nginx prints nothing when ready: poll its ports
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx did not listen on %s", addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nginxFront{HTTP: "http://127.0.0.1:" + itoa(httpPort), HTTPS: "https://127.0.0.1:" + itoa(tlsPort), RootCAs: pool}
}

// dropLines removes the lines of s that contain sub.
func dropLines(s, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// makeCertificate writes a self-signed ECDSA certificate for name and its
// key into dir, and returns their paths and a pool that trusts it.
func makeCertificate(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func itoa(n int) string { return strconv.Itoa(n) }

// clientFrom returns an HTTP client whose connections come from local, an
// address of the loopback range, so the real client differs from nginx.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Timeout: 2 * eventTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// wsBehindNginx first reports the client address it was given, then
// echoes every message.
const wsBehindNginx = `Deno.serve((req) => {
  const xff = req.headers.get("x-forwarded-for");
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onopen = () => socket.send("xff " + xff);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
});`

func TestBehindNginx(t *testing.T) {
	g := startGateway(t, map[string]string{
		"echo/index.ts":   echoURL,
		"stream/index.ts": sseReleaseFn,
		"ws/index.ts":     wsBehindNginx,
	}, "--trusted-proxies", "127.0.0.1/32")
	front := startNginx(t, g)
	c := clientFrom("127.0.0.2")

	req, _ := http.NewRequest("GET", front+"/functions/v1/echo/a?b=1", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // a spoofing attempt
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	decodeJSON(t, resp, &body)
	if body["pathq"] != "/echo/a?b=1" {
		t.Fatalf("through nginx the function saw %v", body["pathq"])
	}
	h := body["headers"].(map[string]any)
	if h["x-forwarded-for"] != "127.0.0.2" {
		t.Fatalf("client IP seen by the function: %v (want the real client 127.0.0.2, not nginx or the spoofed value)", h["x-forwarded-for"])
	}

	// Server-sent events arrive one by one through nginx too.
	resp, err = c.Get(front + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+itoa(i)+"\n" {
			t.Fatalf("event %d through nginx: %q %v", i, line, err)
		}
		br.ReadString('\n')
		if i < 3 {
			r, err := c.Get(front + "/stream/next")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
		}
	}

	// A WebSocket echo: nginx passes the upgrade on (the example sets Upgrade
	// and Connection: upgrade), edgeway splices it to the worker.
	d := websocket.Dialer{HandshakeTimeout: eventTimeout,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}
	ws, wresp, err := d.Dial("ws"+strings.TrimPrefix(front, "http")+"/functions/v1/ws",
		http.Header{"X-Forwarded-For": {"6.6.6.6"}})
	if err != nil {
		status := 0
		if wresp != nil {
			status = wresp.StatusCode
		}
		t.Fatalf("WebSocket through nginx: %v (status %d)", err, status)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(eventTimeout))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "xff 127.0.0.2" {
		t.Fatalf("WebSocket through nginx: first message %q %v, want the real client 127.0.0.2", msg, err)
	}
	big := make([]byte, 256<<10) // more than nginx's proxy buffer
	rand.Read(big)
	for _, m := range []struct {
		kind int
		data []byte
	}{{websocket.TextMessage, []byte("hello through nginx")}, {websocket.BinaryMessage, []byte{0, 1, 2, 0xfe, 0xff}},
		{websocket.BinaryMessage, big}} {
		if err := ws.WriteMessage(m.kind, m.data); err != nil {
			t.Fatal(err)
		}
		kind, got, err := ws.ReadMessage()
		if err != nil || kind != m.kind || !bytes.Equal(got, m.data) {
			t.Fatalf("WebSocket echo of %d bytes through nginx: kind %d, %d bytes, %v", len(m.data), kind, len(got), err)
		}
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close handshake through nginx: %v", err)
	}
}
