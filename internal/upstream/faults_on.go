//go:build edgeway_faults

package upstream

// Test-only fault injection, compiled only with `-tags edgeway_faults`
// (see the gateway's faults_on.go): a request carrying the header
// X-Test-Fault: proxy-write (not x-edgeway-*: the gateway strips those) or proxy-read makes Proxy panic while it
// writes the request to the worker (holding the pipelined connection's
// write lock) or before it reads the response (holding its turn).

import "github.com/valyala/fasthttp"

type faultPoint string

const (
	faultWrite faultPoint = "proxy-write"
	faultRead  faultPoint = "proxy-read"
)

func injectFault(req *fasthttp.Request, at faultPoint) {
	if string(req.Header.Peek("X-Test-Fault")) == string(at) {
		panic("injected fault: " + string(at))
	}
}
