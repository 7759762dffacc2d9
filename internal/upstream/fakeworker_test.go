package upstream

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// eventTimeout bounds every wait for something that must happen; it is
// generous so busy machines do not make tests flake.
const eventTimeout = 10 * time.Second

// fakeWorker is a Unix socket server standing in for a Deno worker: serve
// is called for each accepted connection, on its own goroutine.
func fakeWorker(t *testing.T, o PoolOptions, serve func(nc net.Conn, br *bufio.Reader)) *Worker {
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
			go serve(nc, bufio.NewReader(nc))
		}
	}()
	if o.MaxWorkers == 0 {
		o.MaxWorkers = 1
	}
	p := NewPool(o)
	w := NewWorker(p, 1, 0, sock, WorkerOptions{MaxIdleConns: 4, DialTimeout: time.Second, BufferSize: 4096, ExitWait: time.Millisecond})
	p.Publish(Snapshot{Workers: []*Worker{w}, Total: 1})
	return w
}

// readRequestHead reads one request's head from br (the body is left).
func readRequestHead(br *bufio.Reader) (*http.Request, error) {
	return http.ReadRequest(br)
}
