package setup

import (
	"fmt"
	"io"
	"os"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// NewLogger logs JSON (or console lines on a terminal) through the
// buffered writer out; term is the real output, used to detect a terminal.
func NewLogger(opts config.Options, term io.Writer, out io.Writer) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	level, _ := zerolog.ParseLevel(opts.LogLevel)
	format := opts.LogFormat
	if format == "" {
		format = "json"
		if f, ok := term.(*os.File); opts.Dev || (ok && isatty.IsTerminal(f.Fd())) {
			format = "console"
		}
	}
	if format == "console" {
		// Colours only for a terminal (NO_COLOR honoured): --dev's console
		// format redirected to a file or journald stays plain text.
		f, ok := term.(*os.File)
		colour := ok && isatty.IsTerminal(f.Fd()) && os.Getenv("NO_COLOR") == ""
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000", NoColor: !colour}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

// FlushWithin writes out the buffered log lines, waiting at most timeout
// for a stuck output.
func FlushWithin(w *observe.BufferedWriter, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		w.Flush()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// LocalDeno is where `make deno` installs Deno when none is on PATH.
const LocalDeno = ".tools/node_modules/.bin/deno"

// DenoNotFound is the error for a --deno that does not resolve, with what
// to do about it.
func DenoNotFound(deno string, err error) error {
	hint := "install Deno (`make deno` puts one in " + LocalDeno + ") and pass its path with --deno or EDGEWAY_DENO"
	if st, statErr := os.Stat(LocalDeno); statErr == nil && !st.IsDir() && deno != LocalDeno {
		hint = "`make deno` installed one here: pass --deno " + LocalDeno
	}
	return fmt.Errorf("flag --deno: Deno executable %q not found (%v); %s", deno, err, hint)
}
