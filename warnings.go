package main

import (
	"fmt"
	"io"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// reportStaticFiles tells which files config.toml's static_files let each
// function read.
func reportStaticFiles(w io.Writer, layout *config.Layout) {
	for _, fn := range layout.Functions {
		if len(fn.StaticFiles) > 0 {
			fmt.Fprintf(w, "%s: static files readable: %s\n", fn.Name, strings.Join(fn.StaticFiles, ", "))
		}
	}
}
