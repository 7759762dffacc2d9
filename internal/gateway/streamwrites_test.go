package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// How a chunked response streamed from a worker is written to the client:
// the bytes exactly, and how many writes it took (upstream.TailHolder).

const streamTimeout = 10 * time.Second

// countingConn counts the writes that reach the client's socket.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

type countingListener struct {
	net.Listener
	conns chan *countingConn
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return cc, nil
}

// startRawWorker answers every request on its Unix socket with answer,
// which writes raw bytes.
func startRawWorker(t *testing.T, answer func(nc net.Conn)) string {
	return startBodyWorker(t, func(nc net.Conn, _ []byte) { answer(nc) })
}

// startBodyWorker reads every request on its Unix socket, body included,
// and answers it with answer, which writes raw bytes.
func startBodyWorker(t *testing.T, answer func(nc net.Conn, body []byte)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "w.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
			go func() {
				br := bufio.NewReader(nc)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						return
					}
					answer(nc, body)
				}
			}()
		}
	}()
	return sock
}

// serveRaw starts a gateway in front of sock and returns a raw client
// connection to it and the server side of that connection.
func serveRaw(t *testing.T, sock string) (net.Conn, *bufio.Reader, *countingConn) {
	t.Helper()
	g := newTestGateway(t, sock)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := countingListener{Listener: ln, conns: make(chan *countingConn, 1)}
	go g.Serve(cl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
		defer cancel()
		g.Shutdown(ctx)
	})
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(streamTimeout))
	var server *countingConn
	select {
	case server = <-cl.conns:
	case <-time.After(streamTimeout):
		t.Fatal("the gateway accepted no connection")
	}
	return client, bufio.NewReader(client), server
}

// readHead reads a response head and checks it announces a chunked body.
func readChunkedHead(t *testing.T, br *bufio.Reader) {
	t.Helper()
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if h := strings.ToLower(head.String()); !strings.HasPrefix(h, "http/1.1 200 ok\r\n") ||
		!strings.Contains(h, "\r\ntransfer-encoding: chunked\r\n") {
		t.Fatalf("head %q", head.String())
	}
}

func readExactly(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if n, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("read %q, want %q: %v", got[:n], want, err)
	}
	if string(got) != want {
		t.Fatalf("body bytes %q, want %q", got, want)
	}
}

const sseHead = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

// A chunked response that arrives whole is written to the client in one
// write (head, the chunks the worker sent coalesced into one, the terminal
// chunk), byte for byte, and the connection serves the next request.
func TestStreamedResponseArrivedWholeLeavesInOneWrite(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"chunks coalesced", "5\r\nhello\r\n6\r\n world\r\n1;ext=1\r\n!\r\n0\r\n\r\n", "c\r\nhello world!\r\n0\r\n\r\n"},
		{"trailers dropped", "2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n", "2\r\nhi\r\n0\r\n\r\n"},
		{"empty body", "0\r\n\r\n", "0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sock := startRawWorker(t, func(nc net.Conn) { io.WriteString(nc, sseHead+tc.body) })
			client, br, server := serveRaw(t, sock)
			for i := 0; i < 2; i++ {
				before := server.writes.Load()
				io.WriteString(client, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
				readChunkedHead(t, br)
				readExactly(t, br, tc.want)
				if n := server.writes.Load() - before; n != 1 {
					t.Fatalf("request %d: the response took %d writes, want 1", i, n)
				}
			}
		})
	}
}

// An event the worker sends alone is written at once: the worker sends the
// next one only after the client has read the first. The end of the body
// then leaves with the last event, in one write.
func TestStreamedEventIsNotHeld(t *testing.T) {
	next := make(chan struct{})
	sock := startRawWorker(t, func(nc net.Conn) {
		io.WriteString(nc, sseHead+"9\r\ndata: 0\n\n\r\n")
		select {
		case <-next:
		case <-time.After(streamTimeout):
			return
		}
		io.WriteString(nc, "9\r\ndata: 1\n\n\r\n0\r\n\r\n")
	})
	client, br, server := serveRaw(t, sock)
	io.WriteString(client, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	readChunkedHead(t, br)
	readExactly(t, br, "9\r\ndata: 0\n\n\r\n")
	first := server.writes.Load()
	close(next)
	readExactly(t, br, "9\r\ndata: 1\n\n\r\n0\r\n\r\n")
	if n := server.writes.Load() - first; n != 1 {
		t.Fatalf("the last event and the end took %d writes, want 1", n)
	}
}

// What is held and does not fit the tail buffer goes out in order: the
// held bytes first, then the write that overflowed; what is held after
// ReleaseTail goes out with the next write.
func TestHeldTailKeepsOrder(t *testing.T) {
	for _, size := range []int{10, 10 << 10, 40 << 10} {
		server, client := acceptYield(t)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		var want bytes.Buffer
		put := func(s []byte) {
			want.Write(s)
			if n, err := server.Write(s); n != len(s) || err != nil {
				t.Fatalf("write of %d: %d, %v", len(s), n, err)
			}
		}
		server.HoldTail()
		put(bytes.Repeat([]byte("a"), size))
		put(bytes.Repeat([]byte("b"), size))
		server.ReleaseTail()
		put([]byte("\r\n"))
		put([]byte("after"))
		server.Conn.(*net.TCPConn).CloseWrite()
		select {
		case b := <-got:
			if !bytes.Equal(b, want.Bytes()) {
				t.Fatalf("size %d: client read %d bytes, want %d in order", size, len(b), want.Len())
			}
		case <-time.After(streamTimeout):
			t.Fatal("the client read nothing")
		}
		if server.tail != nil || server.holding {
			t.Fatalf("size %d: still holding after the release", size)
		}
	}
}
