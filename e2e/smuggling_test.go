package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smuggledUnit is a complete request to the admin function, padded to 64
// bytes so that a body made of them splits on a request boundary wherever
// fasthttp stops pre-reading it (8 KiB): on a connection that does not
// settle the body, every unit left unread is served as a request.
var smuggledUnit = func() string {
	u := "GET /admin/smuggled HTTP/1.1\r\nHost: x\r\nX-P: "
	return u + strings.Repeat("p", 64-len(u)-4) + "\r\n\r\n"
}()

// smuggledBody is 32 KiB of smuggledUnit.
var smuggledBody = strings.Repeat(smuggledUnit, 512)

// earlyFn answers without reading its body.
const earlyFn = `Deno.serve(() => new Response("early"));`

func postHead(path, extra string, length int) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "Content-Length: " + itoa(length) + "\r\n\r\n"
}

func chunked(body string, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		b.WriteString(strings.ToLower(strconvHex(n)) + "\r\n" + body[:n] + "\r\n")
		body = body[n:]
	}
	return b.String() + "0\r\n\r\n"
}

func strconvHex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var s []byte
	for ; n > 0; n /= 16 {
		s = append([]byte{digits[n%16]}, s...)
	}
	return string(s)
}

// streamHoldFn streams a response that never ends: it holds its worker's slot
// for as long as the client stays.
const streamHoldFn = `Deno.serve(() => new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("held\\n")); } })));`

// rawCodes is rawExchange returning each response's gateway error code
// (the status when the function answered).
func rawCodes(t *testing.T, g *Gateway, req string) []string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(req))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	br := bufio.NewReader(c)
	var codes []string
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return codes
		}
		io.Copy(io.Discard, resp.Body)
		code := resp.Header.Get("X-Edgeway-Error")
		if code == "" {
			code = itoa(resp.StatusCode)
		}
		codes = append(codes, code)
	}
}

// startSmugglingGateway serves admin (the function no smuggled request may
// reach) and one function per early answer.
func startSmugglingGateway(t *testing.T, args ...string) *Gateway {
	secret := randomSecret(t)
	// Failed boots count toward the crash loop, which would answer
	// CRASH_LOOP before broken's breaker opens: raise its threshold so
	// both early answers are reached.
	base := []string{"--auth", "jwt", "--jwt-secret", secret, "--cors-origins", "https://app.example", "--crash-loop-threshold", "1000"}
	for _, fn := range []string{"admin", "open", "early", "limited", "broken", "small", "hold"} {
		base = append(base, "--public-functions", fn)
	}
	return startGateway(t, map[string]string{
		"admin/index.ts":        hitFn,
		"open/index.ts":         hitFn,
		"private/index.ts":      hitFn,
		"early/index.ts":        earlyFn,
		"limited/index.ts":      hitFn,
		"limited/function.json": `{"rpm": 1}`,
		"broken/index.ts":       "this is not a program {{{",
		"broken/function.json":  `{"breaker": {"errorWindow": 4}}`,
		"small/index.ts":        hitFn,
		"small/function.json":   `{"maxBodyBytes": 4096}`,
		"hold/index.ts":         streamHoldFn,
		"hold/function.json":    `{"maxConcurrency": 1, "maxWorkers": 1, "queueTimeoutMs": 100}`,
	}, append(base, args...)...)
}

// Every early answer to a request whose body hides requests to admin: the
// body is discarded (or the connection closed), exactly one response comes
// back, and admin never sees a request.
func TestSmugglingEarlyAnswersSettleTheBody(t *testing.T) {
	g := startSmugglingGateway(t)
	if r := g.Do("GET", "/limited/first", nil, nil); r.Status != 200 { // spends the one request a minute
		t.Fatalf("limited: %d", r.Status)
	}
	body := smuggledBody
	cases := []struct {
		name string
		req  string
		want []int
	}{
		{"unknown function 404", postHead("/nope", "", len(body)) + body, []int{404}},
		{"unknown function 404, chunked", "POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 4000), []int{404}},
		{"missing token 401", postHead("/private", "", len(body)) + body, []int{401}},
		{"bad token 401", postHead("/private", "Authorization: Bearer x.y.z\r\n", len(body)) + body, []int{401}},
		{"missing token 401 with Expect (no 100 Continue)", postHead("/private", "Expect: 100-continue\r\n", len(body)) + body, []int{401}},
		{"unknown function 404 with Expect", postHead("/nope", "Expect: 100-continue\r\n", len(body)) + body, []int{404}},
		{"admin endpoint", postHead("/health", "", len(body)) + body, []int{405}},
		{"admin endpoint GET", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body, []int{200}},
		{"CORS preflight", "OPTIONS /open HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body, []int{204}},
		{"rate limited 429", postHead("/limited", "", len(body)) + body, []int{429}},
		{"boot error 503", postHead("/broken", "", len(body)) + body, []int{503}},
		{"declared length over the function's limit 413", postHead("/small", "", len(body)) + body, []int{413}},
		{"declared length over the limit 413 with Expect", postHead("/small", "Expect: 100-continue\r\n", len(body)) + body, []int{413}},
		{"chunked body over the function's limit 413", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 4000), []int{413}},
		{"bad chunk 400", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\nzz\r\n" + body, []int{400}},
		{"function answers before reading its body", postHead("/early", "", len(body)) + body, []int{200}},
		{"Connection naming Content-Length", postHead("/open", "Connection: Content-Length\r\n", len(body)) + body, []int{400}},
		{"Connection naming Transfer-Encoding", "POST /open HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 4000), []int{400}},
		{"Connection naming Host", postHead("/open", "Connection: host\r\n", len(body)) + body, []int{400}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rawExchange(t, g, c.req)
			if !equalInts(got, c.want) {
				t.Fatalf("statuses %v, want exactly %v", got, c.want)
			}
		})
	}
	// 503 OVERLOADED: the one slot of hold is taken by a stream.
	held, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	held.Write([]byte("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"))
	held.SetReadDeadline(time.Now().Add(eventTimeout))
	if resp, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("hold: %v %v", resp, err)
	}
	if got := rawCodes(t, g, postHead("/hold", "", len(body))+body); len(got) != 1 || got[0] != "OVERLOADED" {
		t.Fatalf("overloaded: %v, want exactly [OVERLOADED]", got)
	}
	held.Close()
	// 503 CIRCUIT_OPEN (or CRASH_LOOP): broken keeps failing until its
	// breaker opens.
	seen := map[string]bool{}
	for i := 0; i < 40 && !seen["CIRCUIT_OPEN"]; i++ {
		got := rawCodes(t, g, postHead("/broken", "", len(body))+body)
		if len(got) != 1 {
			t.Fatalf("broken: %v, want exactly one answer", got)
		}
		seen[got[0]] = true
	}
	if !seen["CIRCUIT_OPEN"] {
		t.Fatalf("breaker never opened: %v", seen)
	}
	if n := syncHits(t, g, "admin", nil); n != 0 {
		t.Fatalf("%d smuggled requests reached admin", n)
	}
}

// Framing variants: the hidden request is inside a body by one reading
// and a request by another. Whatever the gateway answers, admin never sees
// it and at most one response comes back.
func TestSmugglingFramingVariants(t *testing.T) {
	g := startSmugglingGateway(t)
	hidden := smuggledUnit
	inChunk := chunked(hidden, 1000)
	cases := []struct{ name, req string }{
		{"CL.TE", "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(inChunk)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + inChunk},
		{"TE.CL", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + inChunk},
		{"TE chunked, identity", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 4\r\n\r\n" + inChunk},
		{"TE xchunked", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n" + inChunk},
		{"TE leading space", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked\r\nContent-Length: 4\r\n\r\n" + inChunk},
		{"TE Chunked", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nContent-Length: 4\r\n\r\n" + inChunk},
		{"TE obs-fold", "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + inChunk},
		{"duplicate CL", "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: " + itoa(4+len(hidden)) + "\r\n\r\nabcd" + hidden},
		{"signed CL", "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: +" + itoa(4+len(hidden)) + "\r\n\r\nabcd" + hidden},
		{"obs-fold CL", "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nX-A: b\r\n " + itoa(len(hidden)) + "\r\n\r\nabcd" + hidden},
		{"bare CR in a header", "POST /open HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 4\r\nContent-Length: " + itoa(4+len(hidden)) + "\r\n\r\nabcd" + hidden},
		{"bare LF header end", "POST /open HTTP/1.1\r\nHost: x\nContent-Length: " + itoa(4+len(hidden)) + "\r\n\r\nabcd" + hidden},
		{"NUL in a header", "POST /open HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: " + itoa(4+len(hidden)) + "\r\n\r\nabcd" + hidden},
		{"Connection: Content-Length", "POST /open HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: " + itoa(len(hidden)) + "\r\n\r\n" + hidden},
		{"Expect with CL.TE", "POST /open HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " + itoa(len(inChunk)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + inChunk},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rawExchange(t, g, c.req)
			if len(got) > 1 {
				t.Fatalf("statuses %v: more than one response to one request", got)
			}
		})
	}
	if n := syncHits(t, g, "admin", nil); n != 0 {
		t.Fatalf("%d hidden requests reached admin", n)
	}
}

// A body discarded to its end keeps the connection alive: the next request
// on it is served.
func TestSmugglingDiscardedBodyKeepsConnection(t *testing.T) {
	g := startSmugglingGateway(t)
	next := "GET /open/next HTTP/1.1\r\nHost: x\r\n\r\n"
	if got := rawExchange(t, g, postHead("/nope", "", len(smuggledBody))+smuggledBody+next); !equalInts(got, []int{404, 200}) {
		t.Fatalf("statuses %v, want [404 200]", got)
	}
	// Over --discard-body-max the connection closes instead, and the close
	// lingers: the client reads its 404 although it keeps writing.
	big := strings.Repeat(smuggledUnit, (2<<20)/64)
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { c.Write([]byte(postHead("/nope", "", len(big)) + big)) }()
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to a 2 MiB body: %v", err)
	}
	if resp.StatusCode != 404 || !resp.Close {
		t.Fatalf("status %d, close %v; want 404 with Connection: close", resp.StatusCode, resp.Close)
	}
	if n := syncHits(t, g, "admin", nil); n != 0 {
		t.Fatalf("%d smuggled requests reached admin", n)
	}
}

// A 2 MiB POST over a 1 MiB --max-body gets its 413 (lingering close), not a
// reset while the client is still writing. Raw bytes, so no client library
// smooths the reset over; a few rounds, since a reset is a race.
func TestLargeBodyOverLimitGets413NotReset(t *testing.T) {
	g := startSmugglingGateway(t, "--max-body", "1MiB")
	body := strings.Repeat("x", 2<<20)
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		go c.Write([]byte(postHead("/open/up", "", len(body)) + body))
		c.SetReadDeadline(time.Now().Add(eventTimeout))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			t.Fatalf("round %d: client error instead of 413: %v", i, err)
		}
		c.Close()
		if resp.StatusCode != 413 || resp.Header.Get("X-Edgeway-Error") != "PAYLOAD_TOO_LARGE" {
			t.Fatalf("status %d %q, want 413 PAYLOAD_TOO_LARGE", resp.StatusCode, resp.Header.Get("X-Edgeway-Error"))
		}
	}
}

// The worst case through real nginx, which denies /functions/v1/admin: a
// request hidden in the body of an allowed request never reaches admin.
func TestSmugglingThroughNginxDeny(t *testing.T) {
	g := startSmugglingGateway(t, "--trusted-proxies", "127.0.0.1/32")
	front := startNginxWith(t, g, "location /functions/v1/admin { deny all; }\n")
	unit := strings.Replace(smuggledUnit, "GET /admin/smuggled", "GET /functions/v1/admin/x", 1)
	unit = unit[:len(unit)-4-(len(unit)-64)] + "\r\n\r\n"
	body := strings.Repeat(unit, 512)
	addr := strings.TrimPrefix(front, "http://")
	for _, path := range []string{"/functions/v1/nope", "/functions/v1/early", "/functions/v1/private", "/functions/v1/small", "/functions/v1/open", "/functions/v1/limited"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(postHead(path, "", len(body)) + body))
		c.SetReadDeadline(time.Now().Add(eventTimeout))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		c.Close()
	}
	// nginx itself refuses the direct request.
	if r, err := http.Get(front + "/functions/v1/admin/direct"); err != nil || r.StatusCode != 403 {
		t.Fatalf("nginx deny rule not in force: %v %v", r, err)
	}
	if n := syncHits(t, g, "admin", nil); n != 0 {
		t.Fatalf("%d requests hidden in bodies reached admin through nginx", n)
	}
}

// bigFn streams 128 MiB, or a short answer with ?small.
const bigFn = `Deno.serve((req) => {
  if (new URL(req.url).searchParams.has("small")) return new Response("ok");
  const chunk = new Uint8Array(64 * 1024);
  let n = 0;
  return new Response(new ReadableStream({ pull(c) { if (n++ >= 2048) c.close(); else c.enqueue(chunk); } }));
});`

// Two clients that never read a large response pin both slots of a
// function; each write to them times out after --client-write-timeout, which
// releases the slot, and a third client is served.
func TestSlowReadersReleaseWorkerSlots(t *testing.T) {
	g := startGateway(t, map[string]string{
		"big/index.ts":      bigFn,
		"big/function.json": `{"maxConcurrency": 2, "maxWorkers": 1, "queueTimeoutMs": 60000}`,
	}, "--client-write-timeout", "2s")
	if r := g.Do("GET", "/big?small", nil, nil); r.Status != 200 {
		t.Fatalf("warm-up: %d", r.Status)
	}
	d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	for i := 0; i < 2; i++ {
		c, err := d.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")) // and never read
	}
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "client write timed out: closing the connection" }, 2)
	if r := g.Do("GET", "/big?small", nil, nil); r.Status != 200 || string(r.Body) != "ok" {
		t.Fatalf("third client: %d %q", r.Status, r.Body)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// readerFn reads its whole body before answering.
const readerFn = `Deno.serve(async (req) => new Response(String((await req.text()).length)));`

// A stalled body gets 408 with Connection: close and the connection
// closes: nothing the client sends later is served.
func TestStalledBodyClosesConnection(t *testing.T) {
	g := startGateway(t, map[string]string{"admin/index.ts": hitFn, "up/index.ts": readerFn}, "--body-read-timeout", "300ms")
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(eventTimeout))
	c.Write([]byte(postHead("/up", "", 40000) + strings.Repeat("a", 20000)))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	// The status is TestStalledBodyIs408's business; this one checks the
	// connection is not reused.
	if resp.Header.Get("X-Edgeway-Error") == "" || !resp.Close {
		t.Fatalf("status %d %q, close %v; want a gateway error (408) with Connection: close", resp.StatusCode, resp.Header.Get("X-Edgeway-Error"), resp.Close)
	}
	c.Write([]byte(smuggledUnit)) // may fail: the connection is closing
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("served after the 408: %q", rest)
	}
	if n := syncHits(t, g, "admin", nil); n != 0 {
		t.Fatalf("%d requests reached admin after a 408", n)
	}
}
