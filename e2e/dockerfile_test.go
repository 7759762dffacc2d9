package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerInstruction is one parsed Dockerfile instruction.
type dockerInstruction struct {
	cmd   string   // lower case: from, run, copy...
	args  []string // as the parser split them
	flags []string // --from=build...
	json  bool     // exec form (["a", "b"])
	line  int
}

// parseDockerfile parses path with BuildKit's own Dockerfile parser.
func parseDockerfile(t *testing.T, path string) []dockerInstruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: %s", path, w.Short)
	}
	var out []dockerInstruction
	for _, n := range res.AST.Children {
		in := dockerInstruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		out = append(out, in)
	}
	return out
}

// examples/docker/Dockerfile, read by BuildKit's parser, refers to what
// exists: files of the repository, make targets and what `make install`
// writes, its own stages, real EDGEWAY_ variables, the Go of go.mod; and
// it runs as a user that is not root.
func TestDockerfileRefersToWhatExists(t *testing.T) {
	ins := parseDockerfile(t, "../examples/docker/Dockerfile")
	gomod, _ := os.ReadFile("../go.mod")
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	var table bytes.Buffer
	config.PrintMarkdown(&table)

	args := map[string]string{}
	stages := map[string]bool{}
	var finalStage []dockerInstruction
	installs := "" // what the make commands of the build would do
	for _, in := range ins {
		switch in.cmd {
		case "arg":
			name, def, _ := strings.Cut(in.args[0], "=")
			args[name] = def
		case "from":
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "as") {
				stages[in.args[2]] = true
			}
			finalStage = nil
		case "run":
			for _, m := range regexp.MustCompile(`\bmake ([^&;|]+)`).FindAllStringSubmatch(strings.Join(in.args, " "), -1) {
				cmdline := strings.Fields(m[1])
				for i, a := range cmdline {
					cmdline[i] = os.Expand(a, func(k string) string { return args[k] })
				}
				// A dry run in the repository: the targets exist and what
				// they would install can be checked below.
				cmd := exec.Command("make", append([]string{"-n", "-s"}, cmdline...)...)
				cmd.Dir = ".."
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("line %d: make %s: %v\n%s", in.line, strings.Join(cmdline, " "), err, out)
				}
				installs += string(out)
			}
		case "copy":
			from := ""
			for _, f := range in.flags {
				if v, ok := strings.CutPrefix(f, "--from="); ok {
					from = v
				}
			}
			for _, src := range in.args[:len(in.args)-1] {
				switch {
				case from == "":
					if _, err := os.Stat(filepath.Join("..", src)); err != nil {
						t.Errorf("line %d: COPY %s: not in the repository", in.line, src)
					}
				case !stages[from]:
					t.Errorf("line %d: COPY --from=%s: no such stage", in.line, from)
				case !strings.Contains(installs, " "+src+"\n") && !strings.Contains(installs, " "+src+" "):
					t.Errorf("line %d: COPY --from=%s %s: the build's make install does not write it", in.line, from, src)
				}
			}
		case "env":
			// The parser gives name, value, separator for each pair.
			for i := 0; i+1 < len(in.args); i += 3 {
				if name := in.args[i]; strings.HasPrefix(name, "EDGEWAY_") && !strings.Contains(table.String(), "`"+name+"`") {
					t.Errorf("line %d: ENV %s is no edgeway variable", in.line, name)
				}
			}
		}
		finalStage = append(finalStage, in)
	}
	if goLine == nil || args["GO_VERSION"] != string(goLine[1]) {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", args["GO_VERSION"], goLine[1])
	}

	user, entry := "", dockerInstruction{}
	copied := map[string]bool{}
	for _, in := range finalStage {
		switch in.cmd {
		case "user":
			user = in.args[0]
		case "entrypoint":
			entry = in
		case "copy":
			copied[in.args[len(in.args)-1]] = true
		}
	}
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
		t.Errorf("the image runs as %q: want a user that is not root", user)
	}
	if !entry.json || len(entry.args) == 0 || !copied[entry.args[0]] {
		t.Errorf("ENTRYPOINT %v: want the exec form of a file the final stage copies", entry.args)
	}
	if b, err := json.Marshal(entry.args); err != nil || !strings.Contains(string(b), "/usr/local/bin/edgeway") {
		t.Errorf("ENTRYPOINT %v is not edgeway", entry.args)
	}
}
