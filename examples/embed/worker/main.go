// Command worker embeds one edgeway worker in a Go program: it starts a
// Deno worker from inline code, calls it through net/http's client and
// prints the answer.
//
//	go run ./worker [-deno /path/to/deno]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"edgeway.dev/edgeway/worker"
)

const code = `
Deno.serve((req) => {
  const url = new URL(req.url);
  console.log("serving", url.pathname);
  return new Response(Deno.env.get("GREETING") + " from " + url.pathname);
});
`

func main() {
	deno := flag.String("deno", "", "Deno executable (default: deno on PATH)")
	flag.Parse()
	if err := run(*deno); err != nil {
		log.Fatal(err)
	}
}

func run(deno string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := worker.Start(ctx, worker.Options{
		Deno:           deno,
		Code:           code,
		Env:            map[string]string{"GREETING": "Hello"},
		RequestTimeout: 10 * time.Second,
		OnLog: func(stream, line string) {
			fmt.Fprintf(os.Stderr, "worker %s: %s\n", stream, line)
		},
	})
	if err != nil {
		return err
	}
	defer w.Shutdown(ctx)

	client := &http.Client{Transport: w}
	resp, err := client.Get("http://embedded/hello")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("%d %s\n", resp.StatusCode, body)
	fmt.Printf("requests served: %d\n", w.Stats().Requests)
	return nil
}
