package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestStoppingNamesWhatItWaitsFor: a node slow to stop logs the parts still
// running, and only those; nothing once they all returned.
func TestStoppingNamesWhatItWaitsFor(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	s := newStopping()
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	run := func(f func() error) {
		go func() {
			defer wg.Done()
			_ = f()
		}()
	}
	run(s.track("processor account", func() error { <-ctx.Done(); return nil }))
	run(s.track("projection accounts", func() error { <-release; return nil }))
	stopped := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		s.report(ctx, stopped, log, 20*time.Millisecond)
	}()
	if left := s.left(); strings.Join(left, ",") != "processor account,projection accounts" {
		t.Fatalf("running before the stop: %v", left)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	// The processor returns at once, the projection not: a report may
	// still name both if the processor's goroutine is slow to run.
	for !strings.Contains(out.String(), `msg="still stopping" waiting_for="[projection accounts]"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no 'still stopping' record naming only the projection in 10s: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if logged := out.String(); !strings.Contains(logged, `msg="stopping:`) {
		t.Errorf("the stop was not announced: %q", logged)
	}
	close(release)
	wg.Wait()
	if left := s.left(); len(left) != 0 {
		t.Errorf("running after every part returned: %v", left)
	}
	close(stopped)
	<-reported
}
