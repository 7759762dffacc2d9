package routable

import (
	"testing"
)

type fixedStatus FunctionStatus

func (s fixedStatus) Status() FunctionStatus { return FunctionStatus(s) }

func TestFunctionStatus(t *testing.T) {
	st := FunctionStatus{Name: "f", Running: 2, Starting: 1, Draining: 3,
		Workers: []WorkerStatus{{InFlight: 2}, {InFlight: 5}}}
	for _, c := range []struct {
		name     string
		fn       Function
		inFlight int
		counts   map[string]int
	}{
		{"no reporter", Function{Name: "f"}, 0, map[string]int{"running": 0, "starting": 0, "draining": 0}},
		{"reporter", Function{Name: "f", Reporter: fixedStatus(st)}, 7, map[string]int{"running": 2, "starting": 1, "draining": 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.fn.Status()
			if got.Name != "f" || got.Workers == nil {
				t.Fatalf("Status = %+v, want name f and a non-nil worker list (JSON [])", got)
			}
			if n := got.InFlight(); n != c.inFlight {
				t.Errorf("InFlight = %d, want %d", n, c.inFlight)
			}
			for state, want := range c.counts {
				if n := got.Count(state); n != want {
					t.Errorf("Count(%s) = %d, want %d", state, n, want)
				}
			}
		})
	}
}
