package upstream

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Upgrade proxies a WebSocket handshake to the worker over a connection of
// its own (never a pooled one). If the function answers 101, the client's
// connection is hijacked and bytes are copied both ways, frames unparsed,
// until either side closes. Any other answer goes to the client unchanged.
// The session keeps its in-flight slot until it ends, so open WebSockets
// count toward the worker's load and keep it from going idle.
func (w *Worker) Upgrade(ctx *fasthttp.RequestCtx, deadline time.Time, sessions *Sessions) error {
	c, err := w.dial()
	if err != nil {
		w.release()
		return ErrDial
	}
	nc := c.nc
	nc.SetDeadline(deadline)
	req := &ctx.Request
	if err := c.send(req); err != nil {
		return w.abort(&c, err, deadline)
	}
	resp := &ctx.Response
	stream, err := readResponse(req, resp, c.br)
	if err != nil {
		return w.fail(&c, err, deadline)
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// Refused: the function's own answer, on a connection not reused.
		if stream {
			startStream(resp, w, &c, resp.Header.ContentLength(), false)
			return nil
		}
		w.finish(&c, false)
		return nil
	}
	nc.SetDeadline(time.Time{})
	ctx.Hijack(func(client net.Conn) {
		s := sessions.add(client, nc)
		splice(client, nc, c.br)
		sessions.remove(s)
		nc.Close()
		w.release()
	})
	return nil
}

// splice copies client→worker and worker→client (starting with what the
// worker sent right after its 101) until one side ends, then closes both.
func splice(client, worker net.Conn, workerBuf *bufio.Reader) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(worker, client)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(client, workerBuf)
		done <- struct{}{}
	}()
	<-done
	// One direction ended (a close handshake completed, or a side went
	// away): end the other.
	worker.Close()
	closeUnderlying(client)
	<-done
}

// closeUnderlying closes a hijacked connection's socket (fasthttp's
// hijacked conn ignores Close; the server closes it when the handler
// returns, which is after splice).
func closeUnderlying(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		u.UnsafeConn().Close()
		return
	}
	c.Close()
}

// Sessions tracks open WebSocket sessions so shutdown can end them.
type Sessions struct {
	mu   sync.Mutex
	open map[*session]struct{}
	idle chan struct{} // closed when the last session ends during Close
}

type session struct{ client, worker net.Conn }

// NewSessions returns an empty registry.
func NewSessions() *Sessions { return &Sessions{open: map[*session]struct{}{}} }

func (s *Sessions) add(client, worker net.Conn) *session {
	sess := &session{client: client, worker: worker}
	s.mu.Lock()
	s.open[sess] = struct{}{}
	s.mu.Unlock()
	return sess
}

func (s *Sessions) remove(sess *session) {
	s.mu.Lock()
	delete(s.open, sess)
	if len(s.open) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// Len is the number of open sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Close waits until the open sessions end or grace passes, then closes the
// rest.
func (s *Sessions) Close(grace time.Duration) {
	s.mu.Lock()
	if len(s.open) == 0 {
		s.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	s.idle = idle
	s.mu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-idle:
		return
	case <-t.C:
	}
	s.mu.Lock()
	for sess := range s.open {
		sess.worker.Close()
		closeUnderlying(sess.client)
	}
	s.mu.Unlock()
}
