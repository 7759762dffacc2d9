// Command wsbench is the WebSocket load generator of `make bench` (wrk and
// vegeta speak no WebSocket; k6 spends 30–80 µs of its own per message).
//
//	wsbench -url ws://127.0.0.1:PORT/ws -c 64 -d 10s -size 1024   # echo, closed loop
//	wsbench -url ... -c 1 -d 10s                                  # one connection: round-trip latency
//	wsbench -url ... -mode handshake -c 8 -d 10s                  # connections opened and closed per second
//	wsbench -url ... -mode check -size 1024                       # one text and one binary echo, verified
//
// echo: every connection is opened before the clock starts, then sends one
// message and waits for its echo, again and again, until the duration is
// over (a closed loop, like wrk). The latency of a message is from before
// its write to the end of its echo. A connection that fails is counted and
// opened again.
//
// handshake: every loop opens a connection (TCP connect + HTTP upgrade),
// sends one message, waits for its echo, sends a close frame and waits for
// the server's; the latency is that whole cycle.
//
// It prints one line of JSON and exits 0, also when messages failed (the
// harness reads the error counts); 1 for bad flags or a failed check.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

type config struct {
	url     string
	mode    string
	conns   int
	dur     time.Duration
	size    int
	text    bool
	timeout time.Duration
}

// result is what one run prints. Latencies are in microseconds.
type result struct {
	Mode     string  `json:"mode"`
	Conns    int     `json:"conns"`
	Size     int     `json:"size"`
	Duration float64 `json:"duration_s"`
	// echo: messages echoed; handshake: connections opened, used and closed.
	Count int64   `json:"count"`
	Rate  float64 `json:"rate"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P95   float64 `json:"p95_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
	Mean  float64 `json:"mean_us"`
	// Errors: reads/writes that failed or timed out after the connection was
	// open; Mismatches: echoes that were not the message sent.
	Errors     int64 `json:"errors"`
	Mismatches int64 `json:"mismatches"`
	// ConnectFailures: connections that could not be opened; those answered
	// with an HTTP status instead of 101 are also counted by status.
	ConnectFailures int64            `json:"connect_failures"`
	FailedStatus    map[string]int64 `json:"failed_status,omitempty"`
	// ConnectP50: median time to open the connections of an echo run.
	ConnectP50 float64  `json:"connect_p50_us,omitempty"`
	LastErrors []string `json:"last_errors,omitempty"`
}

// stats is one goroutine's tally, merged at the end (no shared counters
// on the hot path).
type stats struct {
	lat          []time.Duration
	errors       int64
	mismatches   int64
	connectFails int64
	status       map[int]int64
	lastErr      string
}

func (s *stats) fail(err error) {
	s.errors++
	s.lastErr = err.Error()
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "ws://host:port/path of the echo handler")
	flag.StringVar(&c.mode, "mode", "echo", "echo | handshake | check")
	flag.IntVar(&c.conns, "c", 64, "connections (echo) or concurrent open/close loops (handshake)")
	flag.DurationVar(&c.dur, "d", 10*time.Second, "duration")
	flag.IntVar(&c.size, "size", 1024, "message size in bytes")
	flag.BoolVar(&c.text, "text", false, "send text messages (default binary)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "limit per message and per handshake")
	procs := flag.Int("procs", 1, "GOMAXPROCS (1 = one thread, like wrk -t1)")
	flag.Parse()
	if c.url == "" || c.conns < 1 || c.size < 1 {
		fmt.Fprintln(os.Stderr, "wsbench: -url is required; -c and -size must be at least 1")
		os.Exit(1)
	}
	runtime.GOMAXPROCS(*procs)
	var err error
	var res *result
	switch c.mode {
	case "echo":
		res = runEcho(c)
	case "handshake":
		res = runHandshake(c)
	case "check":
		err = check(c)
		res = &result{Mode: "check", Conns: 1, Size: c.size}
		if err != nil {
			res.LastErrors = []string{err.Error()}
		}
	default:
		fmt.Fprintf(os.Stderr, "wsbench: unknown -mode %q\n", c.mode)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err != nil {
		os.Exit(1)
	}
}

func (c config) dialer() *websocket.Dialer {
	// One frame per message: buffers larger than a message and its header.
	buf := c.size + 16
	if buf < 4096 {
		buf = 4096
	}
	return &websocket.Dialer{HandshakeTimeout: c.timeout, ReadBufferSize: buf, WriteBufferSize: buf}
}

func (c config) kind() int {
	if c.text {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

// payload returns size bytes: random for binary messages, printable
// ASCII for text ones (a text message must be valid UTF-8).
func payload(size int, text bool) []byte {
	p := make([]byte, size)
	rand.Read(p)
	if text {
		for i := range p {
			p[i] = 'a' + p[i]%26
		}
	}
	return p
}

// dial opens a connection whose writes must be done by writeDeadline (a
// write blocks only if the peer stops reading).
func (s *stats) dial(d *websocket.Dialer, url string, writeDeadline time.Time) *websocket.Conn {
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		s.connectFails++
		s.lastErr = "dial: " + err.Error()
		if resp != nil {
			if s.status == nil {
				s.status = map[int]int64{}
			}
			s.status[resp.StatusCode]++
			s.lastErr += " (status " + strconv.Itoa(resp.StatusCode) + ")"
		}
		return nil
	}
	ws.SetWriteDeadline(writeDeadline)
	return ws
}

// roundTrip sends msg and reads its echo into buf (len(msg)). It returns
// false, with the error counted, when the connection is no longer usable.
func (s *stats) roundTrip(ws *websocket.Conn, kind int, msg, buf []byte, deadline time.Time) bool {
	ws.SetReadDeadline(deadline)
	if err := ws.WriteMessage(kind, msg); err != nil {
		s.fail(err)
		return false
	}
	k, r, err := ws.NextReader()
	if err != nil {
		s.fail(err)
		return false
	}
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.fail(err)
		return false
	}
	var one [1]byte
	extra, rerr := r.Read(one[:])
	if k != kind || n != len(msg) || extra != 0 || !bytes.Equal(buf, msg) {
		s.mismatches++
		s.lastErr = fmt.Sprintf("echo: kind %d, %d bytes (+%d), want kind %d, %d bytes", k, n, extra, kind, len(msg))
		// drain the rest so the next message starts at a frame boundary
		if rerr == nil {
			io.Copy(io.Discard, r)
		}
	}
	return true
}

// closeConn ends a session the polite way: a close frame, then the peer's
// close frame (or an error, or the deadline), then the socket.
func closeConn(ws *websocket.Conn, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	ws.Close()
}

func runEcho(c config) *result {
	d := c.dialer()
	msg := payload(c.size, c.text)
	kind := c.kind()
	all := make([]*stats, c.conns)
	conns := make([]*websocket.Conn, c.conns)
	connectTimes := make([]time.Duration, c.conns)
	var wg sync.WaitGroup
	for i := range conns {
		all[i] = &stats{lat: make([]time.Duration, 0, 1<<14)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			conns[i] = all[i].dial(d, c.url, t0.Add(c.timeout+c.dur+c.timeout))
			connectTimes[i] = time.Since(t0)
		}()
	}
	wg.Wait()

	start := time.Now()
	end := start.Add(c.dur)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, ws := all[i], conns[i]
			buf := make([]byte, c.size)
			for {
				if ws == nil {
					if ws = s.dial(d, c.url, end.Add(c.timeout)); ws == nil {
						// the target refuses: do not spin on it
						time.Sleep(10 * time.Millisecond)
						if time.Now().Before(end) {
							continue
						}
						break
					}
				}
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if !s.roundTrip(ws, kind, msg, buf, t0.Add(c.timeout)) {
					ws.Close()
					ws = nil
					continue
				}
				s.lat = append(s.lat, time.Since(t0))
			}
			conns[i] = ws
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, ws := range conns {
		if ws != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				closeConn(ws, 2*time.Second)
			}()
		}
	}
	wg.Wait()
	res := summarize(c, all, elapsed)
	slices.Sort(connectTimes)
	res.ConnectP50 = us(connectTimes[len(connectTimes)/2])
	return res
}

func runHandshake(c config) *result {
	d := c.dialer()
	msg := payload(c.size, c.text)
	kind := c.kind()
	all := make([]*stats, c.conns)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(c.dur)
	for i := range all {
		all[i] = &stats{lat: make([]time.Duration, 0, 1<<12)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := all[i]
			buf := make([]byte, c.size)
			for time.Now().Before(end) {
				t0 := time.Now()
				ws := s.dial(d, c.url, t0.Add(c.timeout))
				if ws == nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				ok := s.roundTrip(ws, kind, msg, buf, time.Now().Add(c.timeout))
				if ok {
					closeConn(ws, c.timeout)
					s.lat = append(s.lat, time.Since(t0))
				} else {
					ws.Close()
				}
			}
		}()
	}
	wg.Wait()
	return summarize(c, all, time.Since(start))
}

func check(c config) error {
	d := c.dialer()
	ws, resp, err := d.Dial(c.url, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %v (status %d)", c.url, err, resp.StatusCode)
		}
		return fmt.Errorf("dial %s: %v", c.url, err)
	}
	defer ws.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	for _, m := range []struct {
		kind int
		data []byte
	}{{websocket.TextMessage, payload(c.size, true)}, {websocket.BinaryMessage, payload(c.size, false)}} {
		ws.SetReadDeadline(time.Now().Add(c.timeout))
		if err := ws.WriteMessage(m.kind, m.data); err != nil {
			return err
		}
		k, got, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("echo of a %d-byte message: %v", len(m.data), err)
		}
		if k != m.kind || !bytes.Equal(got, m.data) {
			return fmt.Errorf("echo: kind %d, %d bytes; sent kind %d, %d bytes", k, len(got), m.kind, len(m.data))
		}
	}
	closeConn(ws, c.timeout)
	return nil
}

// us is d in microseconds, to 0.1 µs.
func us(d time.Duration) float64 { return math.Round(float64(d.Nanoseconds())/100) / 10 }

func summarize(c config, all []*stats, elapsed time.Duration) *result {
	res := &result{Mode: c.mode, Conns: c.conns, Size: c.size, Duration: math.Round(elapsed.Seconds()*1000) / 1000}
	n := 0
	for _, s := range all {
		n += len(s.lat)
	}
	lat := make([]time.Duration, 0, n)
	var sum time.Duration
	for _, s := range all {
		lat = append(lat, s.lat...)
		for _, l := range s.lat {
			sum += l
		}
		res.Errors += s.errors
		res.Mismatches += s.mismatches
		res.ConnectFailures += s.connectFails
		for code, k := range s.status {
			if res.FailedStatus == nil {
				res.FailedStatus = map[string]int64{}
			}
			res.FailedStatus[strconv.Itoa(code)] += k
		}
		if s.lastErr != "" && len(res.LastErrors) < 5 {
			res.LastErrors = append(res.LastErrors, s.lastErr)
		}
	}
	res.Count = int64(len(lat))
	if elapsed > 0 {
		res.Rate = math.Round(float64(len(lat))/elapsed.Seconds()*10) / 10
	}
	if len(lat) == 0 {
		return res
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return us(lat[int(p*float64(len(lat)-1)+0.5)]) }
	res.P50, res.P90, res.P95, res.P99 = q(0.50), q(0.90), q(0.95), q(0.99)
	res.Max = us(lat[len(lat)-1])
	res.Mean = us(sum / time.Duration(len(lat)))
	return res
}
