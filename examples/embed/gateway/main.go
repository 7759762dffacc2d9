// Command gateway mounts the edgeway gateway inside a net/http server,
// under /api/, next to the host's own routes, with a custom authenticator
// (a bearer token looked up in a table) and a request-stats hook.
//
//	cd examples/embed && go run ./gateway -deno "$(command -v deno)"
//	curl -H 'Authorization: Bearer demo-token' http://127.0.0.1:8080/api/hello
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"edgeway.dev/edgeway/server"

	"github.com/valyala/fasthttp"
)

// tokenAuth maps bearer tokens to the claims the functions receive. The
// claims are built once: Verify returns the same *server.Claims for a
// token every time, so authentication allocates nothing per request.
type tokenAuth map[string]*server.Claims

var errUnknownToken = errors.New("unknown token")

// Credentials returns the bearer token of the Authorization header.
func (a tokenAuth) Credentials(ctx *fasthttp.RequestCtx) []byte {
	h := ctx.Request.Header.Peek("Authorization")
	if token, ok := bytes.CutPrefix(h, []byte("Bearer ")); ok {
		return token
	}
	return nil
}

// Verify looks the token up (a real one would compare in constant time,
// or check a signature).
func (a tokenAuth) Verify(token []byte, _ time.Time) (*server.Claims, error) {
	if c, ok := a[string(token)]; ok {
		return c, nil
	}
	return nil, errUnknownToken
}

func main() {
	functions := flag.String("functions", "gateway/functions", "functions folder (the default is relative to examples/embed)")
	deno := flag.String("deno", "deno", "Deno executable")
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	demo, err := server.NewClaims(map[string]any{"sub": "demo", "role": "reader"})
	if err != nil {
		log.Fatal(err)
	}

	// The stats hook runs on the request's goroutine: it only hands the
	// numbers over (dropping them if the printer falls behind).
	stats := make(chan server.RequestStats, 1024)
	go func() {
		for st := range stats {
			fmt.Printf("stats function=%s status=%d duration=%s response_bytes=%d\n", st.Function, st.Status, st.Duration, st.ResponseBytes)
		}
	}()

	srv, err := server.New(server.Config{
		FunctionsDir:  *functions,
		Deno:          *deno,
		Authenticator: tokenAuth{"demo-token": demo},
		Flags:         []string{"--log-level=warn"},
		Hooks: server.Hooks{
			OnRequestStats: func(st server.RequestStats) {
				select {
				case stats <- st:
				default:
				}
			},
			OnFunctionReady: func(fn string) { fmt.Printf("function %s is warm\n", fn) },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the host's own page; functions are under /api/\n")
	})
	mux.Handle("/api/", http.StripPrefix("/api", srv.HTTPHandler()))
	host := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	go func() {
		if err := host.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	// The host's server first (no new requests reach the gateway), then
	// the gateway and its workers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host.Shutdown(ctx)
	if err := srv.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	close(stats)
	fmt.Println("stopped")
}
