package observe

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseExposition parses Prometheus text with Prometheus's own parser.
func parseExposition(t *testing.T, text string) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(strings.NewReader(text))
}

// Two functions' Sets share families: the merged exposition has one HELP and
// TYPE per family, typed histograms, and every series of both functions.
func TestWritePrometheusParsesWithSeveralSets(t *testing.T) {
	a := NewFunctionMetrics("expo-a", Gauges{InFlight: func() float64 { return 1 }})
	defer a.Unregister()
	b := NewFunctionMetrics("expo-b", Gauges{InFlight: func() float64 { return 2 }})
	defer b.Unregister()
	a.ObserveRequest(200, 3*time.Millisecond, 10, 20)
	b.ObserveRequest(503, time.Second, 0, 0)
	a.WebSocketClosed(1000, time.Second)

	// What VictoriaMetrics writes by itself, one Set after another, is what
	// Prometheus refuses.
	var raw bytes.Buffer
	metrics.WritePrometheus(&raw, true)
	if _, err := parseExposition(t, raw.String()); err == nil {
		t.Fatal("the unmerged exposition of two Sets parsed: the merge is not needed any more?")
	}

	var out bytes.Buffer
	WritePrometheus(&out)
	fams, err := parseExposition(t, out.String())
	if err != nil {
		t.Fatalf("Prometheus's parser refuses /metrics: %v\n%s", err, out.String())
	}
	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		series int // at least, from these two functions
	}{
		{"edgeway_requests_total", dto.MetricType_COUNTER, 10},
		{"edgeway_request_duration_seconds", dto.MetricType_HISTOGRAM, 2},
		{"edgeway_in_flight_requests", dto.MetricType_GAUGE, 2},
		{"edgeway_websocket_closed_total", dto.MetricType_COUNTER, 1},
		{"edgeway_websocket_duration_seconds", dto.MetricType_HISTOGRAM, 2},
		{"edgeway_log_dropped_total", dto.MetricType_COUNTER, 1},
		{"go_goroutines", dto.MetricType_GAUGE, 1},
		{"process_open_fds", dto.MetricType_GAUGE, 1},
		{"process_max_fds", dto.MetricType_GAUGE, 1},
	} {
		f := fams[c.name]
		if f == nil {
			t.Errorf("%s missing", c.name)
			continue
		}
		if f.GetType() != c.typ || len(f.GetMetric()) < c.series {
			t.Errorf("%s: type %v with %d series, want %v with at least %d", c.name, f.GetType(), len(f.GetMetric()), c.typ, c.series)
		}
		if want := metricHelp[c.name]; want != "" && f.GetHelp() != want {
			t.Errorf("%s: help %q, want %q", c.name, f.GetHelp(), want)
		}
	}
	h := fams["edgeway_request_duration_seconds"]
	for _, m := range h.GetMetric() {
		if m.GetHistogram().GetSampleCount() != 1 || len(m.GetHistogram().GetBucket()) == 0 {
			t.Errorf("histogram series %v: %d samples, %d buckets", m.GetLabel(), m.GetHistogram().GetSampleCount(), len(m.GetHistogram().GetBucket()))
		}
	}
	if n := strings.Count(out.String(), "# TYPE edgeway_requests_total "); n != 1 {
		t.Errorf("%d TYPE lines for edgeway_requests_total", n)
	}
}

func TestRegroup(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"families merged, sorted, help from the table",
			"# HELP edgeway_requests_total\n# TYPE edgeway_requests_total counter\nedgeway_requests_total{function=\"b\"} 1\n" +
				"# HELP a_x\n# TYPE a_x gauge\na_x 2\n" +
				"# HELP edgeway_requests_total\n# TYPE edgeway_requests_total counter\nedgeway_requests_total{function=\"a\"} 3\n",
			"# HELP a_x a_x\n# TYPE a_x gauge\na_x 2\n" +
				"# HELP edgeway_requests_total " + metricHelp["edgeway_requests_total"] + "\n# TYPE edgeway_requests_total counter\n" +
				"edgeway_requests_total{function=\"b\"} 1\nedgeway_requests_total{function=\"a\"} 3\n"},
		{"histogram series stay with their family",
			"# HELP h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n",
			"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n"},
		{"a sample without metadata after a counter is its own family",
			"# HELP c_total given help\n# TYPE c_total counter\nc_total 1\nc_total_other 2\n",
			"# HELP c_total given help\n# TYPE c_total counter\nc_total 1\n# HELP c_total_other c_total_other\nc_total_other 2\n"},
		{"help escaped", "# HELP e a\\b\n# TYPE e gauge\ne 1\n", "# HELP e a\\\\b\n# TYPE e gauge\ne 1\n"},
		{"families without samples dropped", "# HELP e\n# TYPE e gauge\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := regroup(c.in); got != c.want {
				t.Fatalf("regroup:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// FuzzRegroup: whatever the input, regroup keeps every sample line and
// emits at most one TYPE line per family.
func FuzzRegroup(f *testing.F) {
	f.Add("# HELP a\n# TYPE a counter\na 1\n# HELP a\n# TYPE a counter\na{x=\"1\"} 2\n")
	f.Add("# HELP h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\nx 1\n")
	f.Add("#\n\n# TYPE\n# HELP \nfoo")
	f.Fuzz(func(t *testing.T, in string) {
		out := regroup(in)
		samples := 0
		for line := range strings.Lines(in) {
			if l := strings.TrimSuffix(line, "\n"); l != "" && !strings.HasPrefix(l, "#") {
				samples++
			}
		}
		outSamples := 0
		types := map[string]bool{}
		for line := range strings.Lines(out) {
			l := strings.TrimSuffix(line, "\n")
			if strings.HasPrefix(l, "# TYPE ") {
				name, _, _ := strings.Cut(l[len("# TYPE "):], " ")
				if types[name] {
					t.Fatalf("two TYPE lines for %q in\n%s", name, out)
				}
				types[name] = true
			} else if !strings.HasPrefix(l, "#") {
				outSamples++
			}
		}
		if outSamples != samples {
			t.Fatalf("%d samples in, %d out:\n%s", samples, outSamples, out)
		}
	})
}
