//go:build !edgeway_faults

package upstream

import "github.com/valyala/fasthttp"

// injectFault is the test-only fault hook; see faults_on.go. Production
// builds compile this empty version.
func injectFault(*fasthttp.Request, faultPoint) {}

type faultPoint uint8

const (
	faultWrite faultPoint = iota
	faultRead
)
