package upstream

import (
	"sync/atomic"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/rs/zerolog"
)

// panicLog is where goroutines of this package that recover from a panic
// log it (see SetLogger); nothing is logged before it is set, the panic is
// still counted.
var panicLog atomic.Pointer[zerolog.Logger]

// SetLogger sets the logger recovered panics are logged to.
func SetLogger(l zerolog.Logger) { panicLog.Store(&l) }

// recovered counts and logs a panic recovered at where (an observe.Panic*
// constant). Call it from the deferred function that recovered.
func recovered(where string, v any) {
	l := panicLog.Load()
	if l == nil {
		nop := zerolog.Nop()
		l = &nop
	}
	observe.Recovered(*l, where, v)
}
