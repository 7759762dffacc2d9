package ratestore

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// clientLogger sends go-redis's own messages (it prints pool and dial
// failures to stderr by default) to the gateway log at debug, password
// masked: outages are reported once by the Store, not per dial.
type clientLogger struct {
	log    zerolog.Logger
	rawURL string
}

func (l clientLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Str("component", "go-redis").Msg(Mask(l.rawURL, fmt.Sprintf(format, v...)))
}

var clientLogOnce sync.Once

// setClientLogger installs clientLogger; go-redis has one logger per
// process, so the first store's settings stay.
func setClientLogger(log zerolog.Logger, rawURL string) {
	clientLogOnce.Do(func() { redis.SetLogger(clientLogger{log: log, rawURL: rawURL}) })
}
