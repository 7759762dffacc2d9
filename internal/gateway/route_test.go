package gateway

import "testing"

func TestSplitRoute(t *testing.T) {
	cases := []struct {
		uri, name, fnURI string
		slash, ok        bool
	}{
		{"/functions/v1/hello", "hello", "/hello", false, true},
		{"/functions/v1/hello/", "hello", "/hello/", false, true},
		{"/functions/v1/hello/a/b?x=1", "hello", "/hello/a/b?x=1", false, true},
		{"/functions/v1/hello?x=%2F", "hello", "/hello?x=%2F", false, true},
		{"/hello", "hello", "", true, true},
		{"/hello?q", "hello", "?q", true, true},
		{"/hello/", "hello", "/", false, true},
		{"/hello/a%20b?c=d", "hello", "/a%20b?c=d", false, true},
		{"/functions/v1/", "functions", "/v1/", false, true}, // no name: falls to the short route, then 404
		{"/functions", "functions", "", true, true},
		{"/", "", "", false, false},
		{"", "", "", false, false},
		{"http://host/hello", "", "", false, false},
		{"*", "", "", false, false},
		{"/?x", "", "", false, false},
	}
	for _, c := range cases {
		name, fnURI, slash, ok := splitRoute([]byte(c.uri))
		if string(name) != c.name || string(fnURI) != c.fnURI || slash != c.slash || ok != c.ok {
			t.Errorf("splitRoute(%q) = %q %q %v %v, want %q %q %v %v", c.uri, name, fnURI, slash, ok, c.name, c.fnURI, c.slash, c.ok)
		}
	}
}

func TestPathOnly(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "/?a": "/", "/x/y?z": "/x/y", "": ""} {
		if got := string(pathOnly([]byte(in))); got != want {
			t.Errorf("pathOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkSplitRoute(b *testing.B) {
	uri := []byte("/functions/v1/hello/some/path?with=query")
	b.ReportAllocs()
	for b.Loop() {
		splitRoute(uri)
	}
}
