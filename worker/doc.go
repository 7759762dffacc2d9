// Package worker runs one Deno worker process and sends it requests, for Go
// programs that embed edgeway's worker instead of running the gateway.
//
// A worker is started from inline code, a file or a module URL:
//
//	w, err := worker.Start(ctx, worker.Options{
//		Code: `Deno.serve(() => new Response("hello"))`,
//	})
//	if err != nil { ... }
//	defer w.Shutdown(context.Background())
//	client := &http.Client{Transport: w}
//	resp, err := client.Get("http://fn/hello")
//
// It is the same worker the gateway runs: the same bootstrap (Deno.serve,
// export default { fetch } and node:http servers, EdgeRuntime.waitUntil,
// beforeunload and drain events), served on a Unix socket in a private
// folder, with a control channel user code cannot reach, and the same
// keep-alive client. By default it is as strict as the gateway's workers:
// it reads only its own folder, writes nothing but its sockets, and its
// environment is exactly Options.Env (plus DENO_DIR and the few variables
// that steer Deno itself, from the host's environment).
//
// Requests go through Do (fasthttp), RoundTrip (net/http, so
// http.Client{Transport: w} works) or DialWebSocket. A worker does not
// restart: when its process exits (a crash, its memory limit, MaxDuration)
// every call fails with an error wrapping ErrExited, Exited is closed and
// Err says why. Shutdown stops it gracefully, Terminate at once; both
// remove its private folder.
//
// Worker processes need Linux: they are forked from a dedicated locked OS
// thread with PR_SET_PDEATHSIG, so they die with the program that started
// them, even after a kill -9.
package worker
