package lifecycle

import (
	"crypto/rand"
	"encoding/hex"
)

// envConsole tells the bootstrap how to tag console output (see the tag
// format in logwriter.go): "<token>", or "<token>+rid" when lines printed
// while handling a request also carry its request id
// (--worker-request-context).
const envConsole = "EDGEWAY_CONSOLE"

// consoleToken makes a worker's log token: 8 random bytes as hex. Only the
// gateway and that worker's bootstrap know it.
func consoleToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// consoleEnv is the worker's envConsole variable.
func consoleEnv(token string, requestContext bool) string {
	v := envConsole + "=" + token
	if requestContext {
		v += "+rid"
	}
	return v
}
