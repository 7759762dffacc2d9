package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// newIndexTS is the scaffolded entrypoint: one Deno.serve handler, as
// `supabase functions new` writes, without imports (nothing to fetch).
const newIndexTS = `// %[1]s: served at /functions/v1/%[1]s by edgeway serve.
//
//   curl -i http://127.0.0.1:3100/functions/v1/%[1]s \
//     -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
//     -d '{"name":"Functions"}'

Deno.serve(async (req) => {
  const body = req.method === "POST" ? await req.json().catch(() => ({})) : {};
  const name = typeof body.name === "string" ? body.name : "world";
  return Response.json({ message: ` + "`Hello ${name}!`" + ` });
});
`

// newFunctionJSON is written with --public: callable without a token.
const newFunctionJSON = `{
  "auth": false
}
`

// newUsage is `edgeway new --help`.
const newUsage = `Usage: edgeway new NAME [--functions DIR] [--public]

Create a function: DIR/NAME/index.ts with a Deno.serve handler (as
supabase functions new does); with --public also DIR/NAME/function.json
making it callable without a token. NAME starts with a letter, then letters,
digits, - or _. An existing function is never overwritten.

Flags:
  --functions DIR   functions folder (env EDGEWAY_FUNCTIONS, default ./supabase/functions)
  --public          write function.json with "auth": false
`

// newFunction scaffolds a function; flags may come before or after NAME.
func newFunction(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgeway new", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := os.Getenv(config.EnvName("functions"))
	if dir == "" {
		dir = "./supabase/functions"
	}
	fs.StringVar(&dir, "functions", dir, "")
	public := fs.Bool("public", false, "")
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, newUsage)
				return 0
			}
			fmt.Fprintf(stderr, "edgeway new: %v\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(names) != 1 {
		fmt.Fprintf(stderr, "edgeway new: give one function name (%d given); `edgeway new --help`\n", len(names))
		return 2
	}
	name := names[0]
	if !config.ValidName(name) || strings.HasPrefix(name, "_") {
		fmt.Fprintf(stderr, "edgeway new: %q is not a function name: a letter, then letters, digits, - or _\n", name)
		return 2
	}
	fnDir := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(stderr, fmt.Errorf("functions folder %s: %w", dir, err))
	}
	// Mkdir, not MkdirAll: an existing function (or anything by that name)
	// is an error, never overwritten.
	if err := os.Mkdir(fnDir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fail(stderr, fmt.Errorf("%s already exists: not overwritten", fnDir))
		}
		return fail(stderr, fmt.Errorf("create %s: %w", fnDir, err))
	}
	files := map[string]string{"index.ts": fmt.Sprintf(newIndexTS, name)}
	if *public {
		files["function.json"] = newFunctionJSON
	}
	for file, text := range files {
		if err := os.WriteFile(filepath.Join(fnDir, file), []byte(text), 0o644); err != nil {
			return fail(stderr, fmt.Errorf("write %s: %w", filepath.Join(fnDir, file), err))
		}
	}
	fmt.Fprintf(stdout, "created %s\nserve it with `edgeway serve --functions %s` at /functions/v1/%s\n", filepath.Join(fnDir, "index.ts"), dir, name)
	return 0
}
