package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-es/strata/internal/processor"
	"github.com/strata-es/strata/projections"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerCheck asks the brokers for their metadata every few seconds, so
// that /readyz can say whether they are reachable without sending a request
// of its own: a probe must answer fast, and many probes must not become
// many requests to the cluster.
type brokerCheck struct {
	cl    *kgo.Client
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	checked bool
	err     error
	lastOK  time.Time
}

// brokerTimeout bounds one check: a broker that takes longer to say who
// its peers are is as good as unreachable.
const brokerTimeout = 5 * time.Second

// Run checks at once, then every b.every, until ctx ends.
func (b *brokerCheck) Run(ctx context.Context) {
	for {
		err := b.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		b.mu.Lock()
		wasOK := !b.checked || b.err == nil
		b.checked, b.err = true, err
		if err == nil {
			b.lastOK = time.Now()
		}
		b.mu.Unlock()
		// Log the changes, not every check.
		switch {
		case err != nil && wasOK:
			b.log.Warn("the Kafka brokers do not answer; /readyz says not ready until they do", "err", err)
		case err == nil && !wasOK:
			b.log.Info("the Kafka brokers answer again")
		}
		t := time.NewTimer(b.every)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// probe sends one metadata request (for the brokers, no topics). It goes to
// the cluster every time: kadm's BrokerMetadata may answer from the
// client's cache, which outlives the brokers.
func (b *brokerCheck) probe(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	_, err := req.RequestWith(cctx, b.cl)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return err
	}
	// The client retried until the deadline, which hides why: one more
	// attempt at a connection says it (refused, no such host, TLS).
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if perr := b.cl.Ping(pctx); perr != nil && !errors.Is(perr, context.DeadlineExceeded) {
		return fmt.Errorf("no answer to a metadata request in %s: %w", brokerTimeout, perr)
	}
	return fmt.Errorf("no answer to a metadata request in %s", brokerTimeout)
}

// reachable reports whether the last check succeeded.
func (b *brokerCheck) reachable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.checked && b.err == nil
}

// ready says whether the brokers answered the last check, and why not.
func (b *brokerCheck) ready() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.checked:
		return false, "not checked yet: the first metadata request to the brokers has not answered"
	case b.err != nil:
		since := "never since the start"
		if !b.lastOK.IsZero() {
			since = "not since " + time.Since(b.lastOK).Round(time.Second).String() + " ago"
		}
		return false, fmt.Sprintf("unreachable: %v (reachable %s); check that the brokers run and that this host can reach them (--brokers, TLS, SASL)", b.err, since)
	}
	return true, "ok"
}

// readiness is what /readyz checks: the brokers answer, every command
// processor has joined its group and caught up the partitions it owns,
// and every projection runs within its lag bound. Each check says why not
// in words an operator can act on.
type readiness struct {
	broker      *brokerCheck
	procs       map[string]*processor.Processor
	runners     map[string]*projections.Live
	maxLag      int64 // <= 0: no bound
	projections []string
}

func (r *readiness) check() (bool, map[string]string) {
	ready, why := true, map[string]string{}
	check := func(name string, ok bool, reason string) {
		why[name] = reason
		ready = ready && ok
	}
	ok, reason := r.broker.ready()
	check("broker", ok, reason)
	for name, p := range r.procs {
		ok, reason := p.Ready()
		check("processor "+name, ok, reason)
	}
	for _, name := range r.projections {
		ok, reason := projectionReady(r.runners[name].Status(), r.maxLag)
		check("projection "+name, ok, reason)
	}
	return ready, why
}

// projectionReady says whether a projection serves current enough rows:
// it runs (a rebuild beside it does not matter), no partition stopped at
// an event, and it is at most maxLag offsets behind its topics.
func projectionReady(st projections.Status, maxLag int64) (bool, string) {
	for _, s := range st.Sinks {
		if !s.Up {
			// The view waits for its sink: it falls behind while it is down.
			return false, fmt.Sprintf("sink %s is down since %s: %s (the view waits for it, retrying with backoff)", s.Name, s.Since.UTC().Format(time.RFC3339), s.Error)
		}
	}
	switch {
	case st.State != "running" && st.State != "running, rebuilding":
		why := st.State
		if st.Error != "" {
			why += ": " + st.Error
		}
		if st.State == "starting" {
			why += " (reading its topics' end offsets; see the broker check)"
		}
		return false, why
	case len(st.Failed) > 0:
		return false, fmt.Sprintf("%d partition(s) stopped at an event (see /v1/status)", len(st.Failed))
	case maxLag > 0 && st.Lag > maxLag:
		return false, fmt.Sprintf("%d offsets behind its topics, more than the bound of %d (--projection-max-lag): catching up; its rows are that far behind", st.Lag, maxLag)
	}
	return true, fmt.Sprintf("ok: %d offsets behind", st.Lag)
}
