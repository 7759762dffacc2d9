package lifecycle

import (
	"sync"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/rs/zerolog"
)

// poolWithBudget is a prewarm pool of classes keys, not running (the test
// plays its loop), whose processes are fakes a kill makes exit.
func poolWithBudget(b *Budget, keys ...string) *prewarm {
	p := &prewarm{s: &Supervisor{budget: b}, size: 2, maxClasses: len(keys), log: zerolog.Nop(),
		reqs: make(chan any), done: make(chan struct{}), classes: map[string]*classPool{}}
	for _, k := range keys {
		p.classes[k] = &classPool{class: &poolClass{key: k}}
	}
	b.setSpares(p)
	return p
}

// bootFake plays a refill of class key: the slot is taken as fill takes
// it, the boot reported as bootPooled's goroutine reports it.
func bootFake(t *testing.T, p *prewarm, key string) *pooledProc {
	t.Helper()
	if !p.budget().takeSpare() {
		t.Fatalf("no budget slot for a pre-booted worker of %s", key)
	}
	cp := p.classes[key]
	p.booting++
	cp.booting++
	proc := &process{pid: 1, exited: make(chan struct{})}
	var once sync.Once
	proc.fakeSignal = func(syscall.Signal) { once.Do(func() { close(proc.exited) }) }
	pp := &pooledProc{p: proc, class: cp.class}
	p.booted(prewarmBooted{key: key, pp: pp})
	return pp
}

func budgetUsed(b *Budget) (used, spare int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.spare
}

func managerOfClass(key string) *Manager {
	return &Manager{events: make(chan any, 8), done: make(chan struct{}),
		spec: &launchSpec{pool: poolFit{class: &poolClass{key: key}}}}
}

// A pre-booted worker holds a slot of --max-workers-total from its boot
// until it dies, or until it is handed to a function (whose manager took
// a slot of its own for it): never two slots, never none.
func TestPrewarmWorkersHoldBudgetSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Budget{max: 3, members: map[*Manager]struct{}{}}
		p := poolWithBudget(b, "A", "B")
		defer close(p.done) // ends the budget's nudges to the pool
		a1, b1 := bootFake(t, p, "A"), bootFake(t, p, "B")
		if used, spare := budgetUsed(b); used != 2 || spare != 2 {
			t.Fatalf("two pre-booted workers: budget used %d (spare %d), want 2 (2)", used, spare)
		}
		// Handed to a function: the manager's slot counts it from now on.
		if r := p.take("A"); r.pp != a1 {
			t.Fatalf("take = %+v", r)
		}
		synctest.Wait()
		if used, spare := budgetUsed(b); used != 1 || spare != 1 {
			t.Fatalf("after the hand-over: budget used %d (spare %d), want 1 (1)", used, spare)
		}
		a1.p.kill() // the function's worker exits: its manager gives that slot back, not the pool
		synctest.Wait()
		if used, _ := budgetUsed(b); used != 1 {
			t.Fatalf("a handed-over worker's exit released the pool's slot again: used %d", used)
		}
		// Dying while it waits gives the slot back at once, not at the next take.
		b1.p.kill()
		synctest.Wait()
		if used, spare := budgetUsed(b); used != 0 || spare != 0 {
			t.Fatalf("after an idle pre-booted worker died: budget used %d (spare %d), want 0 (0)", used, spare)
		}
		// A failed boot gives its slot back.
		if !b.takeSpare() {
			t.Fatal("no slot")
		}
		p.booting++
		p.classes["A"].booting++
		p.booted(prewarmBooted{key: "A", err: errStartPanicked})
		if used, _ := budgetUsed(b); used != 0 {
			t.Fatalf("a failed boot kept its slot: used %d", used)
		}
		// The pool refills only into a free slot that no function waits for.
		b.used = b.max
		if b.takeSpare() {
			t.Error("a pre-booted worker took a slot over --max-workers-total")
		}
		b.used, b.waiters = 0, []*Manager{managerOfClass("A")}
		if b.takeSpare() {
			t.Error("a pre-booted worker took the slot a function waits for")
		}
	})
}

// With the budget spent, a function that needs a worker has an idle
// pre-booted worker stopped first, of another class than its own (one of
// its own class would serve its cold start), and gets the slot.
func TestBudgetStopsAnIdlePrewarmWorkerFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Budget{max: 2, members: map[*Manager]struct{}{}}
		p := poolWithBudget(b, "A", "B")
		defer close(p.done) // ends the budget's nudges to the pool
		a1, b1 := bootFake(t, p, "A"), bootFake(t, p, "B")
		m := managerOfClass("B")
		if ok, blocked := b.take(m); ok || blocked {
			t.Fatalf("take with the budget spent = %v, blocked %v; want a wait for an eviction", ok, blocked)
		}
		synctest.Wait()
		var req any
		select {
		case req = <-p.reqs:
		default:
			t.Fatal("the budget did not ask the pool to stop an idle pre-booted worker")
		}
		if ev, ok := req.(prewarmEvict); !ok || ev.avoid != "B" {
			t.Fatalf("request to the pool = %#v, want prewarmEvict avoiding B", req)
		}
		p.handle(req)
		synctest.Wait()
		select {
		case <-a1.p.exited:
		default:
			t.Fatal("the idle pre-booted worker of the other class was not stopped")
		}
		select {
		case <-b1.p.exited:
			t.Fatal("the pre-booted worker of the waiting function's own class was stopped")
		default:
		}
		if used, _ := budgetUsed(b); used != 1 {
			t.Fatalf("budget used %d after the eviction, want 1", used)
		}
		select {
		case ev := <-m.events:
			if _, ok := ev.(evBudget); !ok {
				t.Fatalf("the waiting manager was told %#v", ev)
			}
		default:
			t.Fatal("the waiting manager was not told a slot is free")
		}
		// An eviction that finds nothing alive and idle any more lets the
		// budget look elsewhere: a process that died while waiting (its
		// slot already back) does not count.
		b1.p.kill()
		synctest.Wait()
		b.evicting = 1
		p.evict("")
		synctest.Wait()
		if b.evicting != 0 {
			t.Fatalf("evicting = %d after a declined eviction, want 0", b.evicting)
		}
	})
}
