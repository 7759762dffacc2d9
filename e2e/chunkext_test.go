package e2e

import (
	"strings"
	"testing"
)

// lengthFn reads its whole body and answers its length.
const lengthFn = `Deno.serve(async (req) => new Response(String((await req.arrayBuffer()).byteLength)));`

// chunkedWithExt is a chunked body of n chunks "hello", each size line
// carrying ext bytes of extensions.
func chunkedWithExt(n, ext int) string {
	e := strings.Repeat(";a=b", ext/4)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("5" + e + "\r\nhello\r\n")
	}
	return b.String() + "0\r\n\r\n"
}

// Chunk extensions count against a bound (4 × --max-header-bytes of
// framing between two pieces of data): a body whose chunk-size lines carry
// 100 KiB of extensions each is refused 400 and the connection closed, on
// a function route (the body streams to the worker) and on an early answer
// (the body is discarded), and the request sent after it is not served.
// Extensions of a header block's size, and a body of a great many tiny
// chunks, pass.
func TestChunkExtensionsAreBounded(t *testing.T) {
	g := startGateway(t, map[string]string{"len/index.ts": lengthFn})
	const next = "GET /len/next HTTP/1.1\r\nHost: x\r\n\r\n"
	head := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	}
	tiny := strings.Repeat("1\r\nx\r\n", 64<<10) + "0\r\n\r\n" // 64 KiB of data, 384 KiB on the wire
	cases := []struct {
		name, req string
		want      []int
	}{
		{"100 KiB of extensions per chunk, function", head("/len") + chunkedWithExt(4, 100<<10) + next, []int{400}},
		{"100 KiB of extensions per chunk, unknown function", head("/nope") + chunkedWithExt(4, 100<<10) + next, []int{404}},
		{"an endless extension", head("/len") + "5;" + strings.Repeat("a", 1<<20), []int{400}},
		{"extensions as long as a header block", head("/len") + chunkedWithExt(40, 16000) + next, []int{200, 200}},
		{"64 Ki one-byte chunks", head("/len") + tiny + next, []int{200, 200}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := rawExchange(t, g, c.req)
			if !equalInts(got, c.want) {
				t.Fatalf("statuses %v, want exactly %v", got, c.want)
			}
		})
	}
}
