package secure

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// requestCtx builds a request from raw header lines.
func requestCtx(t testing.TB, uri string, headers ...string) *fasthttp.RequestCtx {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	for i := 0; i < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	return &ctx
}

func TestTokenFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		uri     string
		headers []string
		from    TokenSource
		key     string
		want    string
	}{
		{"bearer", "/", []string{"Authorization", "Bearer abc.def.ghi"}, TokenFromHeader, "", "abc.def.ghi"},
		{"bearer named", "/", []string{"Authorization", "Bearer abc"}, TokenFromHeader, "authorization", "abc"},
		{"bearer lower case", "/", []string{"Authorization", "bearer abc"}, TokenFromHeader, "", "abc"},
		{"bearer upper case", "/", []string{"Authorization", "BEARER abc"}, TokenFromHeader, "", "abc"},
		{"bearer extra spaces", "/", []string{"Authorization", "Bearer    abc"}, TokenFromHeader, "", "abc"},
		{"bearer empty", "/", []string{"Authorization", "Bearer "}, TokenFromHeader, "", ""},
		{"bearer only", "/", []string{"Authorization", "Bearer"}, TokenFromHeader, "", ""},
		{"no space", "/", []string{"Authorization", "Bearerabc"}, TokenFromHeader, "", ""},
		{"basic", "/", []string{"Authorization", "Basic dXNlcjpwYXNz"}, TokenFromHeader, "", ""},
		{"bare token", "/", []string{"Authorization", "abc.def.ghi"}, TokenFromHeader, "", ""},
		{"no header", "/", nil, TokenFromHeader, "", ""},
		{"custom header raw", "/", []string{"X-Token", "Bearer abc"}, TokenFromHeader, "X-Token", "Bearer abc"},
		{"custom header any case", "/", []string{"X-Token", "abc"}, TokenFromHeader, "x-token", "abc"},
		{"custom header absent", "/", []string{"Authorization", "Bearer abc"}, TokenFromHeader, "X-Token", ""},
		{"cookie", "/", []string{"Cookie", "a=1; sb-access-token=tok; b=2"}, TokenFromCookie, "sb-access-token", "tok"},
		{"cookie absent", "/", []string{"Cookie", "a=1"}, TokenFromCookie, "sb-access-token", ""},
		{"query", "/fn?x=1&jwt=tok", nil, TokenFromQuery, "jwt", "tok"},
		{"query empty", "/fn?jwt=", nil, TokenFromQuery, "jwt", ""},
		{"query absent", "/fn?x=1", nil, TokenFromQuery, "jwt", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := requestCtx(t, tt.uri, tt.headers...)
			got := TokenFrom(ctx, tt.from, tt.key)
			if string(got) != tt.want || (tt.want == "" && got != nil) {
				t.Fatalf("TokenFrom = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTokenFromDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tests := []struct {
		name string
		ctx  *fasthttp.RequestCtx
		from TokenSource
		key  string
	}{
		{"bearer", requestCtx(t, "/", "Authorization", "Bearer abc"), TokenFromHeader, ""},
		{"header", requestCtx(t, "/", "X-Token", "abc"), TokenFromHeader, "X-Token"},
		{"cookie", requestCtx(t, "/", "Cookie", "a=1; tok=abc"), TokenFromCookie, "tok"},
		{"query", requestCtx(t, "/f?tok=abc"), TokenFromQuery, "tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			allocs := testing.AllocsPerRun(1000, func() { got = TokenFrom(tt.ctx, tt.from, tt.key) })
			if string(got) != "abc" || allocs != 0 {
				t.Fatalf("TokenFrom = %q with %.1f allocs, want %q with 0", got, allocs, "abc")
			}
		})
	}
}

func TestParseTokenSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    TokenSource
		wantErr bool
	}{
		{"", TokenFromHeader, false},
		{"header", TokenFromHeader, false},
		{"Cookie", TokenFromCookie, false},
		{"QUERY", TokenFromQuery, false},
		{"body", 0, true},
		{"headers", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseTokenSource(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseTokenSource(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && tt.in != "" {
			if back, _ := ParseTokenSource(got.String()); back != got {
				t.Errorf("%v does not round-trip through String", got)
			}
		}
	}
}
