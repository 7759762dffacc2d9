package guard

import (
	"strings"
	"testing"
)

// FuzzCORSPreflightEcho: whatever a client asks for, an echoed
// Access-Control-Allow-Headers is exactly what it asked and a plain list of
// header names (nothing that could end the header or add another).
func FuzzCORSPreflightEcho(f *testing.F) {
	for _, seed := range []string{
		"authorization, x-client-info, apikey, content-type",
		"traceparent,tracestate,baggage,x-retry-count",
		"x-a;x-b", "x-a\tx-b", "", " , ", "x-\u00e9", "a\r\nset-cookie: x",
	} {
		f.Add(seed)
	}
	c := NewCORS(CORSOptions{Origins: []string{appOrigin}})
	f.Fuzz(func(t *testing.T, asked string) {
		ctx := newCtx("OPTIONS", "Origin: "+appOrigin, "Access-Control-Request-Method: POST")
		ctx.Request.Header.Set("Access-Control-Request-Headers", asked)
		if !c.Preflight(ctx) {
			t.Fatal("preflight not answered")
		}
		got := string(ctx.Response.Header.Peek("Access-Control-Allow-Headers"))
		if got == "" {
			return
		}
		if got != string(ctx.Request.Header.Peek("Access-Control-Request-Headers")) {
			t.Fatalf("allowed %q, asked %q", got, asked)
		}
		if strings.ContainsAny(got, "\r\n:;\"") || !headerNameList([]byte(got)) {
			t.Fatalf("echoed a value that is not a list of names: %q", got)
		}
	})
}
