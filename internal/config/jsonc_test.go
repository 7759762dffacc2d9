package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeJSONC(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string]any
	}{
		{"plain", `{"a": "b"}`, map[string]any{"a": "b"}},
		{"line comment", "{\n// note\n\"a\": 1 // after\n}", map[string]any{"a": 1.0}},
		{"block comment", `{/* x */"a": /* y */ "b"}`, map[string]any{"a": "b"}},
		{"multi-line block comment", "{\"a\": 1, /*\n\"b\": 2\n*/}", map[string]any{"a": 1.0}},
		{"trailing commas", `{"a": [1, 2,], "b": {"c": 3,},}`, map[string]any{"a": []any{1.0, 2.0}, "b": map[string]any{"c": 3.0}}},
		{"comma before a comment then brace", "{\"a\": 1, // last\n}", map[string]any{"a": 1.0}},
		{"comment markers inside strings", `{"url": "https://x/*y*/", "s": "a,}"}`, map[string]any{"url": "https://x/*y*/", "s": "a,}"}},
		{"escaped quote", `{"q": "say \"//hi\"",}`, map[string]any{"q": `say "//hi"`}},
	}
	for _, c := range cases {
		var got map[string]any
		if err := decodeJSONC([]byte(c.in), &got); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecodeJSONCErrors(t *testing.T) {
	cases := map[string]string{
		"{\n  \"a\": 1\n  \"b\": 2\n}": "line 3",
		`{"a": `:                       "unexpected end of file",
		`{"a": 1} {"b": 2}`:            "unexpected data",
		``:                             "unexpected end of file",
	}
	for in, want := range cases {
		var v map[string]any
		err := decodeJSONC([]byte(in), &v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decodeJSONC(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}
