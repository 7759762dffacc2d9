package lifecycle

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

type loggedEvent struct {
	Level, Message string
}

func TestLineWriterEvents(t *testing.T) {
	for _, c := range []struct {
		name   string
		writes []string
		max    int
		want   []loggedEvent
	}{
		{"one event per line", []string{"a\nb\n"}, 100, []loggedEvent{{"warn", "a"}, {"warn", "b"}}},
		{"a stack trace is one event",
			[]string{"Error: boom\n    at f (file:///x.ts:1:7)\n    at g (file:///x.ts:2:3)\nnext\n"}, 100,
			[]loggedEvent{{"warn", "Error: boom\n    at f (file:///x.ts:1:7)\n    at g (file:///x.ts:2:3)"}, {"warn", "next"}}},
		{"frames of a later write are not waited for",
			[]string{"Error: late\n", "    at f (file:///x.ts:1:7)\n"}, 100,
			[]loggedEvent{{"warn", "Error: late"}, {"warn", "    at f (file:///x.ts:1:7)"}}},
		{"an event stays under the line limit",
			[]string{"Error: e\n    at aaaaaaaaaa\n    at bbbbbbbbbb\n"}, 30,
			[]loggedEvent{{"warn", "Error: e\n    at aaaaaaaaaa"}, {"warn", "    at bbbbbbbbbb"}}},
		{"a line split across writes", []string{"hel", "lo\n"}, 100, []loggedEvent{{"warn", "hello"}}},
		{"not a frame: text starting with at", []string{"x\nat noon\n"}, 100, []loggedEvent{{"warn", "x"}, {"warn", "at noon"}}},
		{"Deno's download progress is info", []string{"Download https://jsr.io/@std/x/meta.json\n"}, 100,
			[]loggedEvent{{"info", "Download https://jsr.io/@std/x/meta.json"}}},
		{"an unterminated last line on Flush", []string{"tail"}, 100, []loggedEvent{{"warn", "tail"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			lw := &lineWriter{log: zerolog.New(&out), level: zerolog.WarnLevel, maxLine: c.max}
			for _, w := range c.writes {
				lw.Write([]byte(w))
			}
			lw.Flush()
			var got []loggedEvent
			for line := range strings.Lines(out.String()) {
				var e loggedEvent
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatal(err)
				}
				got = append(got, e)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("events %q, want %q", got, c.want)
			}
		})
	}
}
