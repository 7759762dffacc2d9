package e2e

import (
	"bytes"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A real gateway's /metrics, with two functions and a WebSocket-free
// request each, is read by Prometheus's own text parser: one HELP and TYPE
// per family (not one per function), histograms typed as histograms, and
// every edgeway family described.
func TestMetricsExposition(t *testing.T) {
	g := startGateway(t, map[string]string{
		"one/index.ts": `Deno.serve(() => new Response("1"));`,
		"two/index.ts": `Deno.serve(() => new Response("2", { status: 201 }));`,
	}, "--internal-key", internalKey)
	for _, fn := range []string{"one", "two"} {
		if r := g.Get("/functions/v1/" + fn); r.Status >= 300 {
			t.Fatalf("%s: %d %s", fn, r.Status, r.Body)
		}
	}
	fams := scrapeFamilies(t, g)
	for name, f := range fams {
		if strings.HasPrefix(name, "edgeway_") && (f.GetHelp() == "" || f.GetHelp() == name) {
			t.Errorf("%s has no help text: add it to observe/metrichelp.go", name)
		}
		if f.GetType() == dto.MetricType_UNTYPED {
			t.Errorf("%s is untyped", name)
		}
	}
	perFunction := map[string]dto.MetricType{
		"edgeway_requests_total":              dto.MetricType_COUNTER,
		"edgeway_request_duration_seconds":    dto.MetricType_HISTOGRAM,
		"edgeway_cold_start_duration_seconds": dto.MetricType_HISTOGRAM,
		"edgeway_workers":                     dto.MetricType_GAUGE,
		"edgeway_breaker_state":               dto.MetricType_GAUGE,
	}
	for name, typ := range perFunction {
		f := fams[name]
		if f == nil {
			t.Errorf("%s missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: %v, want %v", name, f.GetType(), typ)
		}
		seen := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "function" {
					seen[l.GetValue()] = true
				}
			}
		}
		if !seen["one"] || !seen["two"] {
			t.Errorf("%s: series of functions %v, want one and two", name, seen)
		}
	}
	for _, m := range fams["edgeway_request_duration_seconds"].GetMetric() {
		if h := m.GetHistogram(); h.GetSampleCount() != 1 || len(h.GetBucket()) == 0 {
			t.Errorf("request duration %v: %d samples, %d buckets", m.GetLabel(), h.GetSampleCount(), len(h.GetBucket()))
		}
	}
}

// scrapeFamilies reads g's /metrics with Prometheus's own text parser.
func scrapeFamilies(t *testing.T, g *Gateway) map[string]*dto.MetricFamily {
	t.Helper()
	r := g.Do("GET", "/metrics", nil, map[string]string{"Authorization": "Bearer " + internalKey})
	if r.Status != 200 {
		t.Fatalf("/metrics: %d %q", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses /metrics: %v\n%s", err, r.Body)
	}
	return fams
}
