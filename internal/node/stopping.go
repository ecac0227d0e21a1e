package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// stopping keeps the names of a node's parts that are still running, so
// that a node slow to stop says what it is waiting for: a Kafka client
// retrying against a broker that is gone, a request that does not finish.
type stopping struct {
	mu      sync.Mutex
	running map[string]int
}

func newStopping() *stopping { return &stopping{running: map[string]int{}} }

// track counts name as running from now until f returns.
func (s *stopping) track(name string, f func() error) func() error {
	s.mu.Lock()
	s.running[name]++
	s.mu.Unlock()
	return func() error {
		defer func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.running[name]--; s.running[name] == 0 {
				delete(s.running, name)
			}
		}()
		return f()
	}
}

// left returns the parts still running, sorted.
func (s *stopping) left() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.running {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// report waits for ctx to end, says the node is stopping, then every
// interval names the parts still running, until stopped is closed.
func (s *stopping) report(ctx context.Context, stopped <-chan struct{}, log *slog.Logger, every time.Duration) {
	select {
	case <-ctx.Done():
	case <-stopped:
		return
	}
	log.Info("stopping: finishing the requests in flight and leaving the consumer groups (a second Ctrl-C ends the process at once; its state survives that as it survives a crash)")
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stopped:
			return
		case <-t.C:
			if left := s.left(); len(left) > 0 {
				log.Warn("still stopping", "waiting_for", left, "since", time.Since(start).Round(time.Second).String())
			}
		}
	}
}
