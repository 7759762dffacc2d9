package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/fasthttp/websocket"
)

// DialWebSocket opens a WebSocket to the function (Deno.upgradeWebSocket)
// on a worker connection of its own. path is the request target
// ("/chat?room=1"); header is sent with the handshake (Host, Origin,
// Sec-WebSocket-Protocol and the like; the handshake's own headers are
// set by the dialer). The handshake is bounded by ctx and Options.RequestTimeout;
// the session is not: it lasts until either side closes it or the worker
// stops. Shutdown waits for open sessions to end (up to its context), so
// close them before, or give Shutdown a deadline.
//
// A function that refuses the upgrade gives websocket.ErrBadHandshake with
// its response (body included, up to 1 KiB). The returned connection is
// the fasthttp/websocket Conn, not safe for concurrent writers.
func (w *Worker) DialWebSocket(ctx context.Context, path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	if err := w.refusal(); err != nil {
		w.failures.Add(1)
		return nil, nil, err
	}
	if !strings.HasPrefix(path, "/") {
		return nil, nil, fmt.Errorf("worker: DialWebSocket path %q must start with /", path)
	}
	host := defaultHost
	if h := header.Get("Host"); h != "" {
		host = h
		header = header.Clone()
		header.Del("Host")
	}
	sock := w.single.Worker().Sock
	d := websocket.Dialer{
		HandshakeTimeout: w.timeout,
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, "unix", sock)
			if err != nil {
				return nil, err
			}
			w.websockets.Add(1)
			return &sessionConn{Conn: c, w: w}, nil
		},
	}
	conn, resp, err := d.DialContext(ctx, "ws://"+host+path, header)
	if err != nil {
		w.failures.Add(1)
		if r := w.refusal(); r != nil && !errors.Is(err, websocket.ErrBadHandshake) {
			return nil, resp, fmt.Errorf("%w (%w)", r, err)
		}
		return nil, resp, fmt.Errorf("worker: websocket: %w", err)
	}
	return conn, resp, nil
}

// sessionConn counts an open WebSocket connection until it is closed.
type sessionConn struct {
	net.Conn
	w    *Worker
	once sync.Once
}

func (c *sessionConn) Close() error {
	c.once.Do(func() {
		if c.w.websockets.Add(-1) == 0 {
			select {
			case c.w.wsZero <- struct{}{}:
			default:
			}
		}
	})
	return c.Conn.Close()
}
