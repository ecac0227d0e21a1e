package kafka

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceSync produces recs and waits for them, as kgo's ProduceSync does,
// but returns ctx's error as soon as ctx ends. An idempotent producer
// cannot fail a record whose request is on the wire (it cannot know whether
// the broker wrote it), so kgo's ProduceSync goes on waiting, past its
// context, for a broker that may be gone for good: a node stopping while
// its broker is down would never stop. The records still in flight are
// failed when the client is closed.
//
// It returns the first record's error, or nil when every record was
// written.
func ProduceSync(ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var (
		mu    sync.Mutex
		left  = len(recs)
		first error
		done  = make(chan struct{})
	)
	promise := func(_ *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && first == nil {
			first = err
		}
		if left--; left == 0 {
			close(done)
		}
	}
	for _, r := range recs {
		cl.Produce(ctx, r, promise)
	}
	select {
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		return first
	case <-ctx.Done():
		return ctx.Err()
	}
}
