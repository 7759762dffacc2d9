package upstream

import (
	"errors"
	"testing"
	"time"
)

// With the gateway's worker budget spent (Snapshot.NoWorkerSlot), a
// function whose workers are all busy queues its requests like at
// maxWorkers (bounded by maxQueue and the queue timeout) instead of
// holding them to their deadline for a worker that will not start; one
// without any worker refuses at once.
func TestNoWorkerSlotQueuesOrRefuses(t *testing.T) {
	p := NewPool(PoolOptions{MaxWorkers: 4, MaxConcurrency: 1, MaxQueue: 8, QueueTimeout: 10 * time.Millisecond})
	p.Publish(Snapshot{NoWorkerSlot: true})
	if _, err := p.Acquire(time.Now().Add(time.Minute)); err != ErrNoWorkerSlot {
		t.Fatalf("no worker, none can start: %v, want ErrNoWorkerSlot", err)
	}
	w := NewWorker(p, 1, 0, "", WorkerOptions{BufferSize: 4096})
	p.Publish(Snapshot{Workers: []*Worker{w}, Total: 1, NoWorkerSlot: true})
	if got, err := p.Acquire(time.Now().Add(time.Minute)); err != nil || got != w {
		t.Fatalf("first request: %v", err)
	}
	if _, err := p.Acquire(time.Now().Add(5 * time.Second)); err != ErrOverloaded {
		t.Fatalf("every worker busy, none can start: %v, want ErrOverloaded after the queue timeout", err)
	}
}

// An upgrade finding every worker at its WebSocket cap, with the budget
// allowing no other worker, is refused at once, as at maxWorkers.
func TestNoWorkerSlotRefusesWebSocketAtOnce(t *testing.T) {
	p := NewPool(PoolOptions{MaxWorkers: 4, MaxWebSockets: 1})
	w := NewWorker(p, 1, 0, "", WorkerOptions{BufferSize: 4096})
	p.Publish(Snapshot{Workers: []*Worker{w}, Total: 1, NoWorkerSlot: true})
	if got, err := p.AcquireWebSocket(time.Now().Add(time.Minute)); err != nil || got != w {
		t.Fatalf("first upgrade: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.AcquireWebSocket(time.Now().Add(time.Minute))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrOverloaded) {
			t.Fatalf("upgrade beyond the cap with no worker to start: %v, want ErrOverloaded", err)
		}
	case <-time.After(eventTimeout):
		t.Fatal("an upgrade that no worker can take was held")
	}
}
