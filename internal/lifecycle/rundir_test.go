package lifecycle

import (
	"strconv"
	"testing"
)

func TestStatStartTime(t *testing.T) {
	rest := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"
	for _, tc := range []struct {
		stat string
		want string
		ok   bool
	}{
		{"123 (deno)" + rest, "424242", true},
		{"123 (a) b) (c)" + rest, "424242", true}, // a name with parentheses and spaces
		{"123 (deno) S 1 2", "", false},
		{"no parenthesis at all", "", false},
		{"123 (x)" + " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber", "", false},
	} {
		got, ok := statStartTime([]byte(tc.stat))
		if got != tc.want || ok != tc.ok {
			t.Errorf("statStartTime(%q) = %q, %v; want %q, %v", tc.stat, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzStatStartTime(f *testing.F) {
	f.Add([]byte("123 (deno) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"))
	f.Add([]byte("1 ()) ) S"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, stat []byte) {
		start, ok := statStartTime(stat)
		if ok {
			if _, err := strconv.ParseUint(start, 10, 64); err != nil {
				t.Fatalf("start %q is not a number", start)
			}
		} else if start != "" {
			t.Fatalf("failure with a value %q", start)
		}
	})
}
