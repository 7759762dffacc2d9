package lifecycle

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		line string
		want controlMsg
		ok   bool
	}{
		{"ready", controlMsg{kind: ctlReady}, true},
		{"pooled", controlMsg{kind: ctlPooled}, true},
		{"pooled 1", controlMsg{}, false},
		{"pooled ", controlMsg{}, false},
		{"bg 0", controlMsg{kind: ctlBg}, true},
		{"bg 12", controlMsg{kind: ctlBg, n: 12}, true},
		{"pong 7 3", controlMsg{kind: ctlPong, id: 7, n: 3}, true},
		{"pong 18446744073709551615 0", controlMsg{kind: ctlPong, id: 1<<64 - 1}, true},
		{"", controlMsg{}, false},
		{"ready ", controlMsg{}, false},
		{" ready", controlMsg{}, false},
		{"READY", controlMsg{}, false},
		{"bg", controlMsg{}, false},
		{"bg -1", controlMsg{}, false},
		{"bg +1", controlMsg{}, false},
		{"bg 01", controlMsg{}, false},
		{"bg 1  ", controlMsg{}, false},
		{"bg  1", controlMsg{}, false},
		{"bg 1073741825", controlMsg{}, false}, // above maxBackgroundTasks
		{"bg 1\r", controlMsg{}, false},
		{"pong 1", controlMsg{}, false},
		{"pong 18446744073709551616 0", controlMsg{}, false},
		{"pong x 0", controlMsg{}, false},
		{"ping 1", controlMsg{}, false},
		{"ready\x00", controlMsg{}, false},
	} {
		got, err := parseControl([]byte(tc.line))
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("parseControl(%q) = %+v, %v; want %+v, ok %v", tc.line, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, errControlUnknown) {
			t.Errorf("parseControl(%q): error %v is not errControlUnknown", tc.line, err)
		}
	}
}

func TestReadControlBoundsTheLine(t *testing.T) {
	long := strings.Repeat("x", 10*maxControlLine)
	for _, tc := range []struct {
		name  string
		input string
		want  error
	}{
		{"oversized without a newline", long, errControlTooLong},
		{"oversized with a newline", long + "\n", errControlTooLong},
		{"line of exactly the limit", "bg " + strings.Repeat("1", maxControlLine-4) + "\n", errControlUnknown},
		{"line one byte over", "bg " + strings.Repeat("1", maxControlLine-3) + "\n", errControlTooLong},
		{"garbage", "hello\n", errControlUnknown},
	} {
		br := newControlReader(strings.NewReader(tc.input))
		_, err := readControl(br)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if br.Buffered() > maxControlLine {
			t.Errorf("%s: %d bytes buffered", tc.name, br.Buffered())
		}
	}
}

func FuzzParseControl(f *testing.F) {
	for _, s := range []string{"ready", "pooled", "bg 0", "bg 3", "pong 1 0", "pong 18446744073709551615 1073741824", "bg 01", "pong  1 0", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		msg, err := parseControl(line)
		if err != nil {
			if msg != (controlMsg{}) {
				t.Fatalf("error %v with a message %+v", err, msg)
			}
			return
		}
		// Whatever parses prints back to the very same bytes.
		var b bytes.Buffer
		b.WriteString(msg.kind)
		switch msg.kind {
		case ctlBg:
			b.WriteString(" " + itoa(uint64(msg.n)))
		case ctlPong:
			b.WriteString(" " + itoa(msg.id) + " " + itoa(uint64(msg.n)))
		}
		if !bytes.Equal(b.Bytes(), line) || msg.n < 0 || msg.n > maxBackgroundTasks {
			t.Fatalf("parseControl(%q) = %+v, which prints as %q", line, msg, b.Bytes())
		}
		// And a line read through readControl parses the same.
		if len(line) < maxControlLine && !bytes.ContainsRune(line, '\n') {
			got, err := readControl(newControlReader(bytes.NewReader(append(line, '\n'))))
			if err != nil || got != msg {
				t.Fatalf("readControl(%q) = %+v, %v", line, got, err)
			}
		}
	})
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// A worker whose control connection sends an oversized or unknown message
// is killed and replaced, and counted as a crash.
func TestControlViolationKillsWorker(t *testing.T) {
	for _, tc := range []struct {
		name string
		send string
	}{
		{"oversized line", strings.Repeat("A", 300<<10)},
		{"unknown message", "bg 1 2 3\n"},
		{"forged ready", "ready\n"},
		{"pooled from a running worker", "pooled\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.MinWorkers = 1
				h := newHarness(t, cfg, testOptions())
				h.run()
				h.expect(1, 0, 0)
				a := h.proc(0)
				w := bufio.NewWriter(a.peer)
				go func() { w.WriteString(tc.send); w.Flush() }()
				h.settle()
				if a.kills.Load() != 1 {
					t.Fatalf("%d kills after %q, want 1", a.kills.Load(), tc.name)
				}
				h.expect(1, 0, 0)
				if h.started() != 2 || !h.published(h.proc(1)) {
					t.Fatal("the killed worker was not replaced")
				}
				if n := len(h.m.crashes); n != 1 {
					t.Fatalf("%d crashes recorded, want 1", n)
				}
				time.Sleep(time.Second)
				h.stop()
			})
		})
	}
}

// The boot handshake reads the first control line bounded too: a worker
// that sends megabytes before "ready" fails its boot without the gateway
// buffering them.
func TestHandshakeRefusesOversizedFirstLine(t *testing.T) {
	for _, tc := range []struct {
		name, send string
		ok         bool
	}{
		{"ready", "ready\n", true},
		{"oversized", strings.Repeat("A", 4<<20), false},
		{"forged", "pong 1 0\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/c.sock"
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := net.Dial("unix", path)
				if err != nil {
					return
				}
				defer c.Close()
				c.Write([]byte(tc.send))
				time.Sleep(5 * time.Second) // keep the connection open
			}()
			p := &process{exited: make(chan struct{})}
			err = p.handshake(ln.(*net.UnixListener), time.Now().Add(eventWait))
			if (err == nil) != tc.ok {
				t.Fatalf("handshake: %v, want ok %v", err, tc.ok)
			}
			if p.ctlr != nil && p.ctlr.Size() > maxControlLine {
				t.Fatalf("control reader buffers %d bytes", p.ctlr.Size())
			}
			if p.ctl != nil {
				p.ctl.Close()
			}
		})
	}
}

// eventWait bounds waits for real sockets in these tests.
const eventWait = 30 * time.Second
