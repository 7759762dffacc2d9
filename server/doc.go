// Package server runs the edgeway gateway inside a Go program: a
// Supabase-style functions folder served by pools of Deno worker
// processes, started and stopped by the host, served on a listener of its
// own or mounted in the host's fasthttp or net/http server.
//
// The zero Config serves ./supabase/functions as `edgeway serve` would;
// its fields set the common options and Flags any other serve flag, read
// by the same parser as the command line:
//
//	srv, err := server.New(server.Config{
//		FunctionsDir:  "functions",
//		Authenticator: myAuth,
//		Hooks: server.Hooks{
//			OnRequestStats: func(st server.RequestStats) { ... },
//		},
//	})
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	mux.Handle("/fn/", http.StripPrefix("/fn", srv.HTTPHandler()))
//	...
//	srv.Shutdown(ctx)
//
// The edgeway binary is a thin layer over this package: `edgeway serve`
// turns its flags and environment into a Config and runs a Server.
package server
