package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// grafanaDashboard is the part of a Grafana dashboard the test reads.
type grafanaDashboard struct {
	Title  string `json:"title"`
	Panels []struct {
		Type    string          `json:"type"`
		Title   string          `json:"title"`
		GridPos map[string]int  `json:"gridPos"`
		Targets []grafanaTarget `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaTarget struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

var (
	// promSeries is a series name the dashboard may query.
	promSeries = regexp.MustCompile(`\b((?:edgeway|go|process)_[a-zA-Z0-9_]*)(\{[^}]*\})?`)
	// promMatcher is one label matcher inside {...}.
	promMatcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	// promGrouping is a by (...) clause.
	promGrouping = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
)

// Every series examples/grafana/edgeway.json queries exists in a real
// gateway's /metrics, with the labels its selectors and by clauses use.
func TestGrafanaDashboardQueriesExist(t *testing.T) {
	raw, err := os.ReadFile("../examples/grafana/edgeway.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("examples/grafana/edgeway.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Title == "" || p.Type == "" || p.GridPos["w"] == 0 || p.GridPos["h"] == 0 {
			t.Errorf("panel %q: needs a title, a type and a size", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %+v needs an expr and a unique refId", p.Title, tg)
			}
			refs[tg.RefID] = true
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			var q struct {
				Query string `json:"query"`
			}
			if json.Unmarshal(v.Query, &q) != nil || q.Query == "" {
				t.Errorf("variable %s: no query", v.Name)
			}
			exprs = append(exprs, q.Query)
		}
	}

	g := startGateway(t, map[string]string{"one/index.ts": `Deno.serve(() => new Response("1"));`}, "--internal-key", internalKey)
	if r := g.Get("/functions/v1/one"); r.Status != 200 {
		t.Fatalf("one: %d %s", r.Status, r.Body)
	}
	labels := seriesLabels(scrapeFamilies(t, g))

	for _, e := range exprs {
		used := map[string]bool{} // labels of the series this expression reads
		found := false
		for _, m := range promSeries.FindAllStringSubmatch(e, -1) {
			name, sel := m[1], m[2]
			have, ok := labels[name]
			if !ok {
				t.Errorf("%q: no series %s in /metrics", e, name)
				continue
			}
			found = true
			for l := range have {
				used[l] = true
			}
			for _, lm := range promMatcher.FindAllStringSubmatch(sel, -1) {
				if !have[lm[1]] {
					t.Errorf("%q: %s has no label %s", e, name, lm[1])
				}
			}
		}
		if !found {
			t.Errorf("%q: reads no edgeway, go or process series", e)
		}
		for _, by := range promGrouping.FindAllStringSubmatch(e, -1) {
			for l := range strings.SplitSeq(by[1], ",") {
				if l = strings.TrimSpace(l); !used[l] {
					t.Errorf("%q: by (%s): no series it reads has label %s", e, by[1], l)
				}
			}
		}
		if strings.HasPrefix(e, "label_values(") {
			args := strings.Split(strings.TrimSuffix(strings.TrimPrefix(e, "label_values("), ")"), ",")
			if len(args) != 2 || !used[strings.TrimSpace(args[1])] {
				t.Errorf("%q: label not on the series", e)
			}
		}
	}
}

// seriesLabels maps every series name of an exposition (a histogram's
// _bucket, _sum and _count included) to its label names.
func seriesLabels(fams map[string]*dto.MetricFamily) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(name string, names ...string) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, n := range names {
			out[name][n] = true
		}
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName())
			}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", append(ls, "le")...)
				add(name+"_sum", ls...)
				add(name+"_count", ls...)
			case dto.MetricType_SUMMARY:
				add(name, append(ls, "quantile")...)
				add(name+"_sum", ls...)
				add(name+"_count", ls...)
			default:
				add(name, ls...)
			}
		}
	}
	return out
}
