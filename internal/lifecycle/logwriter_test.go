package lifecycle

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

type loggedEvent struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func parseEvents(t *testing.T, out string) []loggedEvent {
	t.Helper()
	var got []loggedEvent
	for line := range strings.Lines(out) {
		var e loggedEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	return got
}

const testToken = "0123456789abcdef"

// tagged is what the bootstrap prints for console.<level>(text) in the
// request rid (an upper-case level: an end mark follows the text).
func tagged(level byte, rid, text string) string {
	return "\x1e" + testToken + string(level) + rid + "\x1f" + text
}

func TestLineWriterEvents(t *testing.T) {
	const hour = time.Hour // a window no test waits for: Flush ends it
	denoError := []string{ // an uncaught error as Deno 2.9 writes it
		"error: Uncaught (in promise) Error: bad import time\n",
		"function inner() { throw new Error(\"bad import time\"); }\n",
		"                         ^\n    at inner (file:///f/index.ts:1:26)\n    at file:///f/index.ts:2:1\n",
	}
	for _, c := range []struct {
		name   string
		stderr bool
		window time.Duration
		writes []string
		max    int
		want   []loggedEvent
	}{
		{"one event per line", false, 0, []string{"a\nb\n"}, 100, []loggedEvent{{"info", "a", ""}, {"info", "b", ""}}},
		{"a stack trace is one event", false, 0,
			[]string{"Error: boom\n    at f (file:///x.ts:1:7)\n    at g (file:///x.ts:2:3)\nnext\n"}, 100,
			[]loggedEvent{{"info", "Error: boom\n    at f (file:///x.ts:1:7)\n    at g (file:///x.ts:2:3)", ""}, {"info", "next", ""}}},
		{"without a window frames of a later write are not waited for", true, 0,
			[]string{"Error: late\n", "    at f (file:///x.ts:1:7)\n"}, 100,
			[]loggedEvent{{"warn", "Error: late", ""}, {"warn", "    at f (file:///x.ts:1:7)", ""}}},
		{"within the window frames of a later write join", true, hour,
			[]string{"Error: late\n", "    at f (file:///x.ts:1:7)\n", "next\n"}, 100,
			[]loggedEvent{{"warn", "Error: late\n    at f (file:///x.ts:1:7)", ""}, {"warn", "next", ""}}},
		{"Deno's error block in several writes is one error event", true, hour, denoError, 1000,
			[]loggedEvent{{"error", strings.TrimSuffix(strings.Join(denoError, ""), "\n"), ""}}},
		{"an event stays under the line limit, its level goes on", true, 0,
			[]string{"error: e\n    at aaaaaaaaaa\n    at bbbbbbbbbb\n"}, 30,
			[]loggedEvent{{"error", "error: e\n    at aaaaaaaaaa", ""}, {"error", "    at bbbbbbbbbb", ""}}},
		{"a line split across writes", false, 0, []string{"hel", "lo\n"}, 100, []loggedEvent{{"info", "hello", ""}}},
		{"a long console line's end mark ends its call, cut or not", false, hour,
			[]string{tagged('I', "r", strings.Repeat("x", 300)+" \x1c") + "\nraw\n" + tagged('I', "r", strings.Repeat("y", 100)), strings.Repeat("y", 50) + " \x1c\nraw\n"}, 100,
			[]loggedEvent{{"info", strings.Repeat("x", 100-len(tagged('I', "r", ""))), "r"}, {"info", "raw", ""},
				{"info", strings.Repeat("y", 100-len(tagged('I', "r", ""))), "r"}, {"info", "raw", ""}}},
		{"a long line is cut", false, 0, []string{strings.Repeat("x", 300) + "\n"}, 256, []loggedEvent{{"info", strings.Repeat("x", 256), ""}}},
		{"not a frame: text starting with at", false, 0, []string{"x\nat noon\n"}, 100, []loggedEvent{{"info", "x", ""}, {"info", "at noon", ""}}},
		{"Deno's progress is debug, its warnings warn", true, 0,
			[]string{"Download https://jsr.io/@std/x/meta.json\nWarning something\nother\n"}, 100,
			[]loggedEvent{{"debug", "Download https://jsr.io/@std/x/meta.json", ""}, {"warn", "Warning something", ""}, {"warn", "other", ""}}},
		{"an unterminated last line on Flush", false, 0, []string{"tail"}, 100, []loggedEvent{{"info", "tail", ""}}},

		{"console lines: level and request id, tag stripped", false, 0,
			[]string{tagged('i', "rid-1", "hello") + "\n" + tagged('d', "", "dbg") + "\n" + tagged('e', "a:b/c", "bad") + "\n"}, 100,
			[]loggedEvent{{"info", "hello", "rid-1"}, {"debug", "dbg", ""}, {"error", "bad", "a:b/c"}}},
		{"a console line's separator space is dropped", false, 0,
			[]string{"\x1e" + testToken + "w7\x1d { a: 1 }\n" + "\x1e" + testToken + "i7\x1d\n"}, 100,
			[]loggedEvent{{"warn", "{ a: 1 }", "7"}, {"info", "", "7"}}},
		{"a console call's lines up to its end are one event", false, 0,
			[]string{tagged('I', "r", "{") + "\n  a: 1\n} \x1c\nraw\n", "after\n"}, 100,
			[]loggedEvent{{"info", "{\n  a: 1\n}", "r"}, {"info", "raw", ""}, {"info", "after", ""}}},
		{"a console call split across writes goes on to its end", false, hour,
			[]string{tagged('I', "r", "{") + "\n  a: 1\nb:", " 2\n} \x1c\nraw\n"}, 100,
			[]loggedEvent{{"info", "{\n  a: 1\nb: 2\n}", "r"}, {"info", "raw", ""}}},
		{"without a window a console call ends with its write", false, 0,
			[]string{tagged('I', "r", "{") + "\n  a: 1\n", "} \x1c\n"}, 100,
			[]loggedEvent{{"info", "{\n  a: 1", "r"}, {"info", "} \x1c", ""}}},
		{"without an end, a console call's lines are those of its write", false, 0,
			[]string{tagged('i', "r", "%s {") + "\n  a: 1\n} \x1c\n", "after\n"}, 100,
			[]loggedEvent{{"info", "%s {\n  a: 1\n} \x1c", "r"}, {"info", "after", ""}}},
		{"end marks are dropped", true, hour,
			[]string{"\x1e" + testToken + "E\x1d \x1c\n" + tagged('E', "", " \x1c") + "\n" + tagged('W', "", "x \x1c") + "\n"}, 100,
			[]loggedEvent{{"error", "", ""}, {"error", "", ""}, {"warn", "x", ""}}},
		{"a long console call goes on in the next event", false, 0,
			[]string{tagged('E', "r", "Error: e") + "\n    at aaaaaaaaaa\n    at bbbbbbbbbb \x1c\n"}, 30,
			[]loggedEvent{{"error", "Error: e\n    at aaaaaaaaaa", "r"}, {"error", "    at bbbbbbbbbb", "r"}}},
		{"a console line ends the event before it", true, hour,
			[]string{"error: x\n", tagged('w', "r", "w") + "\n"}, 100,
			[]loggedEvent{{"error", "error: x", ""}, {"warn", "w", "r"}}},
		{"console.group's indentation stays", false, 0,
			[]string{tagged('I', "r", "grp \x1c") + "\n  " + tagged('I', "r", "in group \x1c") + "\n    " + "\x1e" + testToken + "W\x1d {\n      a: 1\n    } \x1c\n"}, 100,
			[]loggedEvent{{"info", "grp", "r"}, {"info", "  in group", "r"}, {"warn", "    {\n      a: 1\n    }", ""}}},
		{"another token is not a tag", false, 0,
			[]string{"\x1effffffffffffffffi" + "r\x1fforged\n"}, 100,
			[]loggedEvent{{"info", "\x1effffffffffffffffir\x1fforged", ""}}},
		{"a request id with '%' or a space is not a tag", false, 0,
			[]string{tagged('i', "a%s", "x") + "\n" + tagged('i', "a b", "y") + "\n"}, 100,
			[]loggedEvent{{"info", tagged('i', "a%s", "x"), ""}, {"info", tagged('i', "a b", "y"), ""}}},
		{"an unknown level is not a tag", false, 0,
			[]string{"\x1e" + testToken + "xr\x1fz\n"}, 100,
			[]loggedEvent{{"info", "\x1e" + testToken + "xr\x1fz", ""}}},
		{"a request id over 128 bytes is not a tag", false, 0,
			[]string{tagged('i', strings.Repeat("r", 129), "x") + "\n"}, 1000,
			[]loggedEvent{{"info", tagged('i', strings.Repeat("r", 129), "x"), ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			level := zerolog.InfoLevel
			if c.stderr {
				level = zerolog.WarnLevel
			}
			lw := &lineWriter{log: zerolog.New(&out), level: level, stderr: c.stderr, window: c.window, maxLine: c.max, tag: "\x1e" + testToken}
			for _, w := range c.writes {
				lw.Write([]byte(w))
			}
			lw.Flush()
			if got := parseEvents(t, out.String()); !slices.Equal(got, c.want) {
				t.Fatalf("events\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

// An event is logged once the window passes with no write, and a line
// after that starts an event of its own.
func TestLineWriterWindowEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		lw := &lineWriter{log: zerolog.New(&out), level: zerolog.WarnLevel, stderr: true, window: 50 * time.Millisecond, maxLine: 1000}
		lw.Write([]byte("error: Uncaught Error: x\n"))
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		if out.String() != "" {
			t.Fatalf("logged before the window passed: %s", out.String())
		}
		lw.Write([]byte("    at f (file:///x.ts:1:1)\n")) // the window starts again
		time.Sleep(40 * time.Millisecond)
		synctest.Wait()
		if out.String() != "" {
			t.Fatalf("logged before the window passed since the last write: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		want := []loggedEvent{{"error", "error: Uncaught Error: x\n    at f (file:///x.ts:1:1)", ""}}
		if got := parseEvents(t, out.String()); !slices.Equal(got, want) {
			t.Fatalf("after the window: %q, want %q", got, want)
		}
		lw.Write([]byte("    at late\n"))
		lw.Flush()
		want = append(want, loggedEvent{"warn", "    at late", ""})
		if got := parseEvents(t, out.String()); !slices.Equal(got, want) {
			t.Fatalf("after a late line: %q, want %q", got, want)
		}
	})
}

func TestLineWriterBootError(t *testing.T) {
	lw := &lineWriter{log: zerolog.Nop(), level: zerolog.WarnLevel, stderr: true, maxLine: 1000}
	lw.Write([]byte("Download https://x\nerror: Uncaught Error: boom\n    at f (file:///x.ts:1:1)\n"))
	lw.Flush()
	if got := lw.BootError(); got != "Uncaught Error: boom" {
		t.Fatalf("BootError %q", got)
	}
	if got := (&lineWriter{}).BootError(); got != "" {
		t.Fatalf("BootError without output %q", got)
	}
}

// Whatever a worker writes, no event is longer than the limit and a
// request id is only ever printable ASCII.
func FuzzLineWriter(f *testing.F) {
	f.Add([]byte(tagged('i', "r", "x")+"\n    at y\nerror: z\n"), 7)
	f.Add([]byte(tagged('E', "r", "Error: x")+"\n    at y\n  \x1c\nz \x1c\n"), 8)
	f.Add([]byte("\x1e"+testToken+"e\x1d\n\x1e"+testToken), 3)
	f.Add([]byte("a\r\nb\n\n\n  c"), 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var out bytes.Buffer
		lw := &lineWriter{log: zerolog.New(&out), level: zerolog.WarnLevel, stderr: true, maxLine: 256, tag: "\x1e" + testToken}
		if split%2 == 0 {
			lw.window = time.Hour // events go on across writes until Flush
		}
		split = max(1, split%64+1)
		for len(data) > 0 {
			n := min(split, len(data))
			lw.Write(data[:n])
			data = data[n:]
		}
		lw.Flush()
		for _, e := range parseEvents(t, out.String()) {
			if utf8.RuneCountInString(e.Message) > 256 {
				t.Fatalf("event of %d bytes", len(e.Message))
			}
			for _, c := range []byte(e.RequestID) {
				if c < 0x21 || c > 0x7e || c == '%' {
					t.Fatalf("request id %q", e.RequestID)
				}
			}
		}
	})
}

// syncBuffer is a bytes.Buffer a timer's goroutine may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
