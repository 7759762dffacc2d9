package lifecycle

import "strings"

// Variables the gateway sets for every worker's bootstrap, last, over the
// function's own layers (which may not set them: see workerOwnedVars and
// the EDGEWAY_ prefix). The bootstrap deletes them from Deno.env: the
// control path and DENO_AUTO_SERVE before the entry runs,
// DENO_SERVE_ADDRESS once the worker's socket is bound.
//   - EDGEWAY_CONTROL: the one-shot control socket the bootstrap connects to;
//   - DENO_SERVE_ADDRESS=unix:<worker socket>: Deno itself moves the first
//     node:http server (express, fastify, createServer().listen(port)) and
//     the first Deno.serve onto the worker's socket;
//   - DENO_AUTO_SERVE=1: `deno run` serves an `export default { fetch }`
//     entry through Deno.serve, which the bootstrap has replaced;
//   - EDGEWAY_NODE_SERVER=1, only for functions that may start a node:http
//     server (see nodeserver.go): the bootstrap makes server.address()
//     answer for a server moved onto the socket;
//   - EDGEWAY_CONSOLE: the console tag's token (consoletag.go);
//   - EDGEWAY_POOL=1, only for pre-booted workers (prewarm.go): wait for
//     the function on the control channel.
const (
	envControl      = "EDGEWAY_CONTROL"
	envServeAddress = "DENO_SERVE_ADDRESS"
	envAutoServe    = "DENO_AUTO_SERVE"
	envNodeServer   = "EDGEWAY_NODE_SERVER"
	envPool         = "EDGEWAY_POOL"
)

// bootstrapEnvVars are what the bootstrap reads and deletes: the worker
// needs env permission for these names (and only these, when its profile
// grants no other).
var bootstrapEnvVars = []string{envControl, envServeAddress, envAutoServe, envNodeServer, envConsole, envPool}

// listenWildcards are denied to every worker: a function's own TCP
// listener on all interfaces (a second node:http server, Deno.listen({port}))
// would answer without the gateway in front. Deno checks a listen against
// the same net permission as a connection, so only the wildcard addresses,
// which no connection needs, can be told apart.
var listenWildcards = []string{"0.0.0.0", "[::]"}

// workerEnv is a worker's environment: the function's resolved variables
// and the bootstrap's, in a new slice (vars is shared by every spawn).
func workerEnv(vars []string, sock, ctl string, nodeServer bool) []string {
	env := make([]string, 0, len(vars)+len(bootstrapEnvVars))
	env = append(env, vars...)
	env = append(env,
		envControl+"="+ctl,
		envServeAddress+"=unix:"+sock,
		envAutoServe+"=1",
	)
	if nodeServer {
		env = append(env, envNodeServer+"=1")
	}
	return env
}

// workerGrants adds to a worker's permission flags what the bootstrap
// needs and what every worker is refused: env access to bootstrapEnvVars
// (merged into a scoped --allow-env, nothing extra under an unscoped one)
// and listenWildcards in --deny-net (merged likewise; an unscoped
// --deny-net already refuses them).
func workerGrants(flags []string) []string {
	out := make([]string, 0, len(flags)+2)
	envDone, denyDone := false, false
	for _, f := range flags {
		switch {
		case f == "--allow-env" || f == "--allow-all":
			envDone = true
		case f == "--deny-net":
			denyDone = true
		case strings.HasPrefix(f, "--allow-env="):
			f = mergeList(f, bootstrapEnvVars)
			envDone = true
		case strings.HasPrefix(f, "--deny-net="):
			f = mergeList(f, listenWildcards)
			denyDone = true
		}
		out = append(out, f)
	}
	if !envDone {
		out = append(out, "--allow-env="+strings.Join(bootstrapEnvVars, ","))
	}
	if !denyDone {
		out = append(out, "--deny-net="+strings.Join(listenWildcards, ","))
	}
	return out
}

// mergeList appends to "--flag=a,b" the items it does not list yet.
func mergeList(flag string, items []string) string {
	name, list, _ := strings.Cut(flag, "=")
	have := strings.Split(list, ",")
	for _, it := range items {
		if !contains(have, it) {
			have = append(have, it)
		}
	}
	return name + "=" + strings.Join(have, ",")
}
