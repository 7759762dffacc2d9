package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// examples/nginx/edgeway.conf as an operator installs it: next to the
// distribution's default site (listen 80 default_server), over plain HTTP
// and TLS (a certificate made here), the Host with its port reaching the
// function, and an oversized body answered by edgeway's JSON 413, not
// nginx's HTML one.
func TestNginxSiteNextToDefaultSite(t *testing.T) {
	g := startGateway(t, map[string]string{"echo/index.ts": echoURL})
	front := startNginxSite(t, g, nginxSite{defaultSite: true})
	httpPort := front.HTTP[strings.LastIndexByte(front.HTTP, ':')+1:]
	tlsPort := front.HTTPS[strings.LastIndexByte(front.HTTPS, ':')+1:]

	// Every connection goes to nginx on 127.0.0.2 (a client other than
	// nginx itself), whatever name the URL holds.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c := &http.Client{Timeout: 2 * eventTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: front.RootCAs},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, "127.0.0.1:"+port)
		},
	}}
	get := func(url string) (int, map[string]any, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(body, &m)
		return resp.StatusCode, m, string(body)
	}

	// A name other than the site's is the default site's (nginx's 404):
	// the default site is there and answering.
	if status, _, body := get(front.HTTP + "/functions/v1/echo"); status != 404 || !strings.Contains(body, "nginx") {
		t.Fatalf("a request for 127.0.0.1 reached %d %q, want the default site's 404", status, body)
	}

	for _, c := range []struct{ scheme, port string }{{"http", httpPort}, {"https", tlsPort}} {
		host := nginxServerName + ":" + c.port
		status, m, body := get(c.scheme + "://" + host + "/functions/v1/echo/a?b=1")
		if status != 200 || m == nil {
			t.Fatalf("%s through nginx beside the default site: %d %q", c.scheme, status, body)
		}
		h, _ := m["headers"].(map[string]any)
		for k, want := range map[string]any{
			"host": host, "pathq": "/echo/a?b=1",
		} {
			if m[k] != want {
				t.Errorf("%s: the function saw %s %v, want %v (nginx must pass $http_host, port included)", c.scheme, k, m[k], want)
			}
		}
		for k, want := range map[string]string{
			"x-forwarded-proto": c.scheme, "x-forwarded-host": host, "x-forwarded-for": "127.0.0.2",
		} {
			if h[k] != want {
				t.Errorf("%s: the function saw %s %v, want %v", c.scheme, k, h[k], want)
			}
		}
	}

	// Content-Length one byte over edgeway's default --max-body (30 MiB):
	// edgeway refuses it at once with its JSON error, which means nginx's
	// client_max_body_size let it through. Only the head and the first MiB
	// are sent (edgeway reads a few KiB of a body before deciding).
	conn, err := tls.DialWithDialer(dialer, "tcp", "127.0.0.1:"+tlsPort, &tls.Config{RootCAs: front.RootCAs, ServerName: nginxServerName})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		io.WriteString(conn, "POST /functions/v1/echo HTTP/1.1\r\nHost: "+nginxServerName+"\r\nContent-Type: application/octet-stream\r\nContent-Length: 31457281\r\n\r\n")
		conn.Write(make([]byte, 1<<20)) // fails once the connection is closed: fine
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e map[string]any
	json.Unmarshal(body, &e)
	if resp.StatusCode != 413 || e["code"] != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("oversized body through nginx: %d %q, want edgeway's JSON 413 PAYLOAD_TOO_LARGE", resp.StatusCode, body)
	}
}
