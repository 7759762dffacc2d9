package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

func io_Pipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

func timeAfter(d time.Duration) <-chan time.Time { return time.After(d) }

// sleepPoll paces loops that poll /proc, for which there is no event.
func sleepPoll() { time.Sleep(20 * time.Millisecond) }

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL, err)
	}
}
