package observe

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckOutput blocks every Write until released, like a stderr pipe nobody
// reads.
type stuckOutput struct {
	release chan struct{}
	mu      sync.Mutex
	got     bytes.Buffer
	entered chan struct{}
	once    sync.Once
}

func (s *stuckOutput) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Write(p)
}

func TestWritesNeverWaitForAStuckOutput(t *testing.T) {
	out := &stuckOutput{release: make(chan struct{}), entered: make(chan struct{})}
	b := NewBufferedWriter(out, 4096, 64<<10, time.Hour)
	line := []byte(strings.Repeat("x", 99) + "\n")
	// Fill past flushAt: the flusher takes the buffer and blocks in Write.
	for i := 0; i < 50; i++ {
		b.Write(line)
	}
	<-out.entered
	// The flusher is stuck; writers are not. They fill the bound, then drop.
	before := b.Dropped()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ { // 200 KB > the 64 KiB bound
			if n, err := b.Write(line); n != len(line) || err != nil {
				t.Errorf("Write = %d, %v", n, err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a writer waited for the stuck output")
	}
	if b.Dropped() == before {
		t.Fatal("nothing was dropped beyond the bound")
	}
	b.mu.Lock()
	held := len(b.buf)
	b.mu.Unlock()
	if held > 64<<10 {
		t.Fatalf("%d bytes held, above the 64 KiB bound", held)
	}
	// Once the output takes lines again, what was kept is written out.
	close(out.release)
	if err := b.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.got.Len() < 64<<10 {
		t.Fatalf("only %d bytes written after the output resumed", out.got.Len())
	}
}

func TestCloseGivesUpOnAStuckOutput(t *testing.T) {
	out := &stuckOutput{release: make(chan struct{}), entered: make(chan struct{})}
	defer close(out.release)
	b := NewBufferedWriter(out, 4096, 64<<10, time.Hour)
	b.Write(bytes.Repeat([]byte("y"), 5000))
	<-out.entered
	if err := b.Close(10 * time.Millisecond); err == nil {
		t.Fatal("Close reported success with the output stuck")
	}
}

func TestLinesKeepTheirOrder(t *testing.T) {
	var out bytes.Buffer
	b := NewBufferedWriter(&out, 4096, 1<<20, time.Millisecond)
	var want strings.Builder
	for i := 0; i < 1000; i++ {
		l := strings.Repeat(string(rune('a'+i%26)), i%50) + "\n"
		want.WriteString(l)
		b.Write([]byte(l))
	}
	if err := b.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Fatal("lines were reordered or lost")
	}
}
