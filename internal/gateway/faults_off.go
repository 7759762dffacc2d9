//go:build !edgeway_faults

package gateway

import "github.com/valyala/fasthttp"

// injectFault is the test-only fault hook; see faults_on.go. Production
// builds compile this empty version, so no request can reach a fault.
func injectFault([]byte) {}

func injectAfterProxyFault(*fasthttp.RequestCtx) {}
