package guard

import "testing"

func BenchmarkCORSPreflight(b *testing.B) {
	c := NewCORS(CORSOptions{Origins: []string{"https://a.example", appOrigin}})
	ctx := newCtx("OPTIONS", "Origin: "+appOrigin, "Access-Control-Request-Method: POST")
	for b.Loop() {
		c.Preflight(ctx)
	}
}

func BenchmarkCORSApply(b *testing.B) {
	c := NewCORS(CORSOptions{Origins: []string{"https://a.example", appOrigin}, ExposeHeaders: "x-request-id"})
	ctx := newCtx("POST", "Origin: "+appOrigin)
	for b.Loop() {
		ctx.Response.Header.Reset()
		c.Apply(ctx)
	}
}
