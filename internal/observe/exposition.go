package observe

import (
	"bytes"
	"io"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// VictoriaMetrics/metrics writes `# HELP`/`# TYPE` per family only when told
// to, and then once per Set: with one Set per function, a family shared by
// functions would get its metadata once per function, which Prometheus
// refuses ("second TYPE line"). WritePrometheus merges them.
func init() { metrics.ExposeMetadata(true) }

// WritePrometheus writes every registered metric (all Sets, Go and process
// metrics, open and maximum file descriptors) as Prometheus text: families sorted by name, each with one
// `# HELP` (the text in help, when known) and one `# TYPE` line followed by
// all its samples, whatever Set they came from. Scrapes are rare: building
// the output in memory is fine here, off the request path.
func WritePrometheus(w io.Writer) {
	var raw bytes.Buffer
	metrics.WritePrometheus(&raw, true)
	// process_open_fds and process_max_fds: clients, workers' sockets and
	// pipes all take descriptors (see edgeway_accept_fd_exhausted_total).
	// Counting them reads /proc/self/fd, which is why the library leaves it
	// out by default; once per scrape is fine.
	metrics.WriteFDMetrics(&raw)
	io.WriteString(w, regroup(raw.String()))
}

// family is one metric family's metadata and samples, in order.
type family struct {
	name, typ, help string
	samples         []string
}

// regroup merges the families of text written by several Sets.
func regroup(text string) string {
	byName := map[string]*family{}
	get := func(name string) *family {
		f := byName[name]
		if f == nil {
			f = &family{name: name}
			byName[name] = f
		}
		return f
	}
	var cur *family
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
		case strings.HasPrefix(line, "# HELP "):
			name, help, _ := strings.Cut(line[len("# HELP "):], " ")
			cur = get(name)
			if cur.help == "" {
				cur.help = help
			}
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(line[len("# TYPE "):], " ")
			cur = get(name)
			if cur.typ == "" {
				cur.typ = typ
			}
		case strings.HasPrefix(line, "#"):
		default:
			name := sampleName(line)
			if cur == nil || !cur.owns(name) {
				cur = get(name) // a sample written without metadata
			}
			cur.samples = append(cur.samples, line)
		}
	}
	names := make([]string, 0, len(byName))
	for name, f := range byName {
		if len(f.samples) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		f := byName[name]
		help := metricHelp[name]
		if help == "" {
			help = f.help
		}
		if help == "" {
			help = name
		}
		b.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
		if f.typ != "" {
			b.WriteString("# TYPE " + name + " " + f.typ + "\n")
		}
		for _, s := range f.samples {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// owns reports whether a sample called name belongs to family f: its own
// name, or a histogram's or summary's _bucket/_sum/_count series.
func (f *family) owns(name string) bool {
	if name == f.name {
		return true
	}
	if f.typ != "histogram" && f.typ != "summary" {
		return false
	}
	switch strings.TrimPrefix(name, f.name) {
	case "_bucket", "_sum", "_count":
		return true
	}
	return false
}

// sampleName is the metric name of an exposition sample line.
func sampleName(line string) string {
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		return line[:i]
	}
	return line
}

// escapeHelp escapes a help text as the text format requires.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
