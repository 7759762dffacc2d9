package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startEchoWorker answers every request on its Unix socket with its body,
// Content-Length framed, head and body in separate writes.
func startEchoWorker(t *testing.T) string {
	return startBodyWorker(t, func(nc net.Conn, body []byte) {
		fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		nc.Write(body)
	})
}

// readFixedResponse reads a response head and its Content-Length body.
func readFixedResponse(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	n := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v", err)
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "content-length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if n < 0 {
		t.Fatal("response without Content-Length")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatalf("reading %d body bytes: %v", n, err)
	}
	return body
}

// Bodies around every size where the whole-body path changes how a
// response is written (fasthttp's 4 KiB write buffer, whose flush is held
// and sent with the rest in one writev; the 16 KiB worker buffer; the
// --upstream-body-buffer bound, above which bodies stream), echoed by a
// worker on one keep-alive connection: every response is complete, byte
// for byte, and none waits for a write that does not come.
func TestWholeBodiesEchoedExactlyOverOneConnection(t *testing.T) {
	client, br, _ := serveRaw(t, startEchoWorker(t))
	for _, size := range []int{0, 100, 3900, 4095, 4096, 4097, 8192, 16384, 16385, 65535, 65536, 65537, 200000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i*13 + i/255)
			}
			go func() {
				fmt.Fprintf(client, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
				client.Write(want)
			}()
			if got := readFixedResponse(t, br); !bytes.Equal(got, want) {
				t.Fatalf("echoed %d bytes, not the %d sent (or in another order)", len(got), size)
			}
		})
	}
}

// A write armed to be held that is not a full buffer goes out at once,
// and a held full buffer goes out, in order, with the next write.
func TestHoldFullOnlyHoldsAFullBuffer(t *testing.T) {
	for _, first := range []int{100, serverWriteBuffer - 1, serverWriteBuffer + 1, serverWriteBuffer} {
		server, client := acceptYield(t)
		client.SetReadDeadline(time.Now().Add(streamTimeout))
		server.holdFull = true
		a := bytes.Repeat([]byte("a"), first)
		if n, err := server.Write(a); n != first || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
		if first != serverWriteBuffer {
			got := make([]byte, first)
			if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, a) {
				t.Fatalf("first write of %d not sent at once: %v", first, err)
			}
			continue
		}
		b := bytes.Repeat([]byte("b"), 70000)
		go server.Write(b)
		got := make([]byte, first+len(b))
		if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, append(a, b...)) {
			t.Fatalf("held buffer and the next write: %v", err)
		}
	}
}
