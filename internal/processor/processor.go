// Package processor is the write path: it consumes an aggregate type's
// commands topic in a consumer group and, for each command, decides and
// appends its events exactly once.
//
// # The loop and why its order is safe
//
// For each batch of polled commands, in one Kafka transaction:
//
//  1. Every partition of the batch that was just assigned is caught up
//     first (catchUp): Pebble's checkpoint for events partition p says how
//     far the local state reflects the events topic; the events after it
//     are read (read_committed) and applied.
//  2. A record the commands checkpoint says a committed transaction decided
//     already (the group's offset was behind) is skipped (skipDecided).
//     Each command is decoded, deduplicated by command ID, checked against
//     expected_version and decided against the state (Pebble, plus what
//     earlier commands of the batch did). Its events go to events partition
//     p, the one its command came from: commands and events are keyed and
//     partitioned alike, so p's owner is the only writer of events
//     partition p. A command that arrived on the wrong partition (a client
//     with another partitioner) is forwarded to the right one in the same
//     transaction. Undecodable commands go to the DLQ.
//  3. The producer is flushed, so every event has its offset; then each
//     command's result, carrying the position of its events, is produced.
//  4. Once every record is flushed and checked (acknowledged, and by one
//     producer epoch: see txnProducer), the transaction commits the
//     events, results, DLQ records and the consumed command offsets
//     together. A rebalance before the commit aborts it, and the session
//     rewinds to the committed offsets.
//  5. Only after the commit, state, event index, results and checkpoints
//     (events, results and commands) are written to Pebble in one batch.
//
// Pebble is therefore never ahead of Kafka. If the process dies between 4
// and 5, Pebble is behind: the next owner of p (this process restarted, or
// another) catches up from the checkpoint in step 1 before deciding
// anything. The catch-up first waits until no transaction is open on the
// events partition (its last stable offset reaches the high watermark seen
// at the start), so the outcome of a previous owner's last transaction is
// known before it reads. The transactional ID is stable per data directory,
// so a restarted process fences and aborts its own unfinished transaction
// at once instead of waiting for the transaction timeout.
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/metrics"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a Processor.
type Config struct {
	Codec      codec.Codec
	DB         *store.DB
	Names      kafka.Names
	Partitions int32 // of the commands and events topics
	// InstanceID identifies this process's data directory; it makes the
	// transactional ID stable across restarts.
	InstanceID string
	// Opts are the connection options (brokers, TLS, SASL, logger).
	Opts []kgo.Opt
	Log  *slog.Logger
	// MaxBatch is the most commands per transaction. Default 2000: large
	// enough to amortize the two round trips a transaction costs, small
	// enough to keep a batch's latency in milliseconds.
	MaxBatch int
	// SnapshotEvery: a snapshot of an aggregate is written (to the
	// snapshots topic, in the transaction of the command, and to Pebble)
	// each time its version reaches a multiple of it. Default 100: a
	// snapshot costs one record per hundred events (1%), and bounds time
	// travel and a restored aggregate's replay to 99 events. Negative
	// disables snapshots.
	SnapshotEvery int
	// DedupeWindow is how long a command's result is kept to answer a
	// resend of its command ID without applying it again. Default 24h
	// (the results topic keeps results as long). Longer windows cost
	// about 200 bytes of state store per command.
	DedupeWindow time.Duration
	// SessionTimeout is how long the group waits for a silent instance
	// before moving its partitions. Default 10s: a dead instance's
	// commands wait at most that long; a restarted one takes its
	// partitions back at once (static membership) and a stopped one
	// leaves explicitly.
	SessionTimeout time.Duration
	// TxnTimeout is the broker-side transaction timeout. Default 20s.
	TxnTimeout time.Duration
	// Now is the clock handed to Decide. Default time.Now.
	Now func() time.Time
	// Applied receives the events positions written to Pebble.
	Applied *position.Tracker
	// StateCache is how many aggregates' stored records are kept in
	// memory in front of Pebble. Default 262,144 (tens of MB at most);
	// negative disables it.
	StateCache int
	// Tracer starts a span for each command (see trace.go). Default nil:
	// tracing off, and a trace context that arrives with a command is
	// still passed on to its events and result.
	Tracer *tracing.Tracer
	// Metrics receives the write path's counters and timings. Default: a
	// registry of its own that nothing serves.
	Metrics *metrics.Metrics
	// Faults are fault-injection hooks for tests; leave zero.
	Faults Faults
}

// Faults are hooks at the dangerous points of the loop, for tests that prove
// the loop's guarantees. Each is called with the batch's size; a non-nil
// error fails the batch there. Nil hooks do nothing.
type Faults struct {
	// BeforeFlush runs after the batch's events are handed to the producer
	// and before they are acknowledged. An error aborts the transaction;
	// the batch is retried.
	BeforeFlush func(commands int) error
	// BeforeCommit runs after every record of the batch is produced and
	// before the transaction commits. An error aborts it; the batch is
	// retried.
	BeforeCommit func(commands int) error
	// AfterCommit runs after the transaction committed and before Pebble
	// is written. An error stops the processor there, as a crash would:
	// Pebble stays behind Kafka.
	AfterCommit func(commands int) error
	// BeforeCatchUp runs before each attempt at catching up newly
	// assigned partitions. An error counts as Kafka not answering: the
	// attempt is retried, with a growing wait.
	BeforeCatchUp func(partitions int) error
}

// ErrInjected wraps the errors of fault hooks in logs and returns.
var ErrInjected = errors.New("strata: injected fault")

func (c *Config) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 2000
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 100
	}
	if c.StateCache == 0 {
		c.StateCache = 1 << 18
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 24 * time.Hour
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.TxnTimeout <= 0 {
		c.TxnTimeout = 20 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Applied == nil {
		c.Applied = position.NewTracker()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Processor runs the write path of one aggregate type.
type Processor struct {
	cfg                                            Config
	agg, commands, events, results, dlq, snapshots string

	met *metrics.Aggregate

	mu         sync.Mutex
	pending    map[int32]bool // assigned and not yet caught up
	owned      map[int32]bool
	failed     map[int32]string // assigned, and stopped by an event it cannot apply
	cancelPoll context.CancelFunc
	// joined: the group member has been given its assignment (possibly
	// none) and has not lost its membership since.
	joined bool

	// followFailed are partitions the follower stopped at an event it
	// cannot apply.
	followFailed map[int32]string
	// followLag and followCaughtUp are the follower's progress (see
	// follower.progress); followLag < 0 until it is known.
	followLag      int64
	followCaughtUp bool
	// stateMu orders the follower's writes and the processor's takeover
	// of a partition (see follow).
	stateMu sync.Mutex
	// ownGen counts the changes of owned, for work.commit.
	ownGen atomic.Uint64
	cache  *stateCache
	// Set by Run: filters of the command IDs with a stored result and
	// of the aggregates stored.
	seen, exists *keyFilter
}

// Status is what a processor is doing, for /v1/status.
type Status struct {
	Aggregate string `json:"aggregate"`
	// Joined says this node's member has joined the processor's consumer
	// group. It may own no partition: with more instances than
	// partitions, some wait as standbys.
	Joined bool `json:"joined"`
	// Owned are the commands partitions this node processes.
	Owned []int32 `json:"owned"`
	// CatchingUp are owned partitions whose state is still being caught
	// up from the events topic; their commands wait until it is.
	CatchingUp []int32 `json:"catching_up,omitempty"`
	// Failed are owned partitions stopped at an event this build cannot
	// apply, with the reason (topic, partition, offset, fingerprint). Their
	// commands wait; the other partitions go on.
	Failed map[int32]string `json:"failed,omitempty"`
	// FollowLag is how many offsets of the events topic are still to be
	// read on the partitions this node does not own, whose state it keeps
	// for reads (-1: not known yet, as while it restores snapshots).
	FollowLag int64 `json:"follow_lag"`
	// FollowCaughtUp: on every partition it does not own, this node has
	// read the events topic up to where it ended when the node started.
	// Until then, reads of those partitions' aggregates may be stale.
	FollowCaughtUp bool `json:"follow_caught_up"`
}

// Status returns the processor's status.
func (p *Processor) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Status{Aggregate: p.agg, Joined: p.joined, Owned: []int32{}, FollowLag: p.followLag, FollowCaughtUp: p.followCaughtUp}
	for part := range p.owned {
		st.Owned = append(st.Owned, part)
		if p.pending[part] {
			st.CatchingUp = append(st.CatchingUp, part)
		}
	}
	sort.Slice(st.Owned, func(i, j int) bool { return st.Owned[i] < st.Owned[j] })
	sort.Slice(st.CatchingUp, func(i, j int) bool { return st.CatchingUp[i] < st.CatchingUp[j] })
	if len(p.failed)+len(p.followFailed) > 0 {
		st.Failed = map[int32]string{}
		for part, why := range p.followFailed {
			st.Failed[part] = "following: " + why
		}
		for part, why := range p.failed {
			st.Failed[part] = why
		}
	}
	return st
}

// Ready reports whether the processor takes the commands of every
// partition it owns, and says why not in words an operator can act on.
// Owning no partition is ready: with more instances than partitions, some
// are standbys.
func (p *Processor) Ready() (bool, string) {
	st := p.Status()
	group := p.cfg.Names.ProcessorGroup(p.agg)
	switch {
	case !st.Joined:
		return false, fmt.Sprintf("not a member of consumer group %s yet: it joins once the group coordinator answers (see the broker check); a rebalance can take up to the session timeout (%s) when an instance died", group, p.cfg.SessionTimeout)
	case len(st.CatchingUp) > 0:
		return false, fmt.Sprintf("catching up the state of partition(s) %v from %s before taking their commands (progress in the log)", st.CatchingUp, p.events)
	case len(st.Failed) > 0:
		return false, fmt.Sprintf("%d partition(s) stopped at an event (see /v1/status)", len(st.Failed))
	case !st.FollowCaughtUp:
		behind := "restoring snapshots, or listing the topic's ends"
		if st.FollowLag >= 0 {
			behind = fmt.Sprintf("%d offsets behind", st.FollowLag)
		}
		return false, fmt.Sprintf("reading the state of the partitions other instances own from %s (%s): reads of their aggregates may be stale until then", p.events, behind)
	case len(st.Owned) == 0:
		return true, fmt.Sprintf("ok: member of %s owning no partition (more instances than partitions: a standby)", group)
	}
	return true, fmt.Sprintf("ok: owns partition(s) %v", st.Owned)
}

// New returns a processor; Run starts it.
func New(cfg Config) *Processor {
	cfg.setDefaults()
	agg := cfg.Codec.Type.Name()
	commands := cfg.Names.Commands(agg)
	return &Processor{
		cfg: cfg,
		agg: agg,
		met: cfg.Metrics.Aggregate(metrics.AggregateNames{
			Aggregate: agg, CommandTypes: cfg.Codec.Type.CommandTypes(), EventTypes: cfg.Codec.Type.EventTypes(),
			Group: cfg.Names.ProcessorGroup(agg), Topic: commands,
		}),
		commands:  commands,
		events:    cfg.Names.Events(agg),
		results:   cfg.Names.Results(agg),
		dlq:       cfg.Names.DLQ(agg),
		snapshots: cfg.Names.Snapshots(agg),
		pending:   map[int32]bool{},
		owned:     map[int32]bool{},
		failed:    map[int32]string{},

		followFailed: map[int32]string{},
		followLag:    -1,
		cache:        newStateCache(cfg.StateCache),
	}
}

// Run processes commands until ctx ends. It returns nil on a clean stop and
// an error when it cannot continue safely (Pebble failed, the events topic
// holds a record this build cannot read).
func (p *Processor) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	p.seen = p.newKeyFilter(ctx, "results", store.ResultKey(p.agg, ""))
	p.exists = p.newKeyFilter(ctx, "aggregates", store.AggregateKey(p.agg, ""))
	defer p.seen.wait()
	defer p.exists.wait()
	defer cancel()
	opts := append(append([]kgo.Opt(nil), p.cfg.Opts...),
		kgo.ConsumerGroup(p.cfg.Names.ProcessorGroup(p.agg)),
		kgo.ConsumeTopics(p.commands),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through (and are skipped below), so
		// that the offsets committed, and the lag measured, reach the end
		// of a partition rather than stopping one short of each marker.
		kgo.KeepControlRecords(),
		kgo.RequireStableFetchOffsets(),
		// A fetch in flight keeps partitions assigned after it was sent
		// waiting until it returns; the default 5s long poll made the
		// first command after a start wait that long.
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.TransactionalID(p.cfg.Names.ProcessorGroup(p.agg)+"."+p.cfg.InstanceID),
		// A transaction begun right after the previous one ended can have
		// its first produce refused with CONCURRENT_TRANSACTIONS while the
		// coordinator still writes the previous markers (a 3-node Apache
		// Kafka 4.4 does, often). franz-go retries it after a metadata
		// refresh, which MetadataMinAge rate-limits: with its default 5s,
		// such a batch took 5-10s instead of half a second.
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.TransactionTimeout(p.cfg.TxnTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Static membership: a process restarted on the same data
		// directory (after a crash, an upgrade) takes its partitions back
		// at once, without a rebalance and without waiting for the dead
		// member's session to expire. A clean stop leaves explicitly
		// (below) so the others take over at once; a dead instance's
		// partitions move after SessionTimeout.
		kgo.InstanceID(p.instanceMember()),
		kgo.SessionTimeout(p.cfg.SessionTimeout),
		// The eager sticky balancer, not franz-go's default cooperative
		// one: each assignment then lists every partition the member
		// owns, which onAssigned relies on (see there). A rebalance
		// pauses every member for a moment; static membership keeps
		// restarts from causing one.
		kgo.Balancers(kgo.StickyBalancer()),
		kgo.WithHooks(manageErrors{p}),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onLost),
	)
	log := p.cfg.Log.With("aggregate", p.agg)
	// newSession joins the group and initializes the transactional
	// producer now, not at the first transaction: InitProducerID fences
	// this data directory's previous incarnation and aborts its unfinished
	// transaction, which would otherwise hold the events partitions' last
	// stable offset (and so the catch-up below) until the transaction
	// timeout.
	newSession := func() (*kgo.GroupTransactSession, error) {
		s, err := kgo.NewGroupTransactSession(opts...)
		if err != nil {
			return nil, fmt.Errorf("processor %s: %w", p.agg, err)
		}
		for {
			if _, _, err := s.Client().ProducerID(ctx); err == nil || ctx.Err() != nil {
				return s, nil
			} else {
				log.Warn("initializing the transactional producer; retrying", "err", err)
				sleep(ctx, time.Second)
			}
		}
	}
	sess, err := newSession()
	if err != nil {
		return err
	}
	defer func() {
		sess.Close()
		// A static member does not leave the group when it closes: say
		// it is gone, so its partitions move now rather than after the
		// session timeout.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if cl, err := kgo.NewClient(p.cfg.Opts...); err == nil {
			_, _ = kadm.NewClient(cl).LeaveGroup(lctx, kadm.LeaveGroup(p.cfg.Names.ProcessorGroup(p.agg)).InstanceIDs(p.instanceMember()).Reason("strata stopping"))
			cl.Close()
		}
	}()
	// The follower and the expiry of old results run beside the loop
	// and stop with it.
	fctx, stopFollower := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() {
		err := p.follow(fctx)
		followed <- err
		if err != nil {
			cancel() // the processor stops with it: see follow
		}
	}()
	expired := make(chan struct{})
	go func() { defer close(expired); p.expireResults(fctx, log) }()
	defer func() {
		stopFollower()
		<-expired
		if ferr := <-followed; ferr != nil {
			p.cfg.Log.Error("follower stopped; stopping the processor", "aggregate", p.agg, "err", ferr)
			if err == nil {
				err = fmt.Errorf("processor %s: follower: %w", p.agg, ferr)
			}
		}
	}()
	log.Info("command processor started", "topic", p.commands, "group", p.cfg.Names.ProcessorGroup(p.agg))
	for {
		// A new assignment interrupts the poll, so that its partitions
		// are caught up at once rather than when a command arrives:
		// reads of this node's state are then current soon after start.
		pollCtx, cancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.cancelPoll = cancel
		if len(p.pending) > 0 {
			cancel()
		}
		p.mu.Unlock()
		fetches := sess.PollRecords(pollCtx, p.cfg.MaxBatch)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn("fetch error; retrying", "topic", t, "partition", part, "err", err)
			}
		})
		p.observeLag(fetches)
		newlyFailed, err := p.catchUpPending(ctx, sess)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		recs := commandRecords(fetches)
		if len(recs) == 0 {
			continue
		}
		if newlyFailed || p.anyFailed(recs) {
			// The batch may hold commands of a partition that just
			// failed: rewind everything to the committed offsets (an
			// empty transaction, aborted) and poll again without it.
			if err := sess.Begin(); err != nil {
				return fmt.Errorf("processor %s: begin transaction: %w", p.agg, err)
			}
			if _, err := sess.End(ctx, kgo.TryAbort); err != nil && ctx.Err() == nil {
				return fmt.Errorf("processor %s: rewind: %w", p.agg, err)
			}
			p.met.Aborted(metrics.AbortRewind)
			continue
		}
		if err := p.transact(ctx, sess, recs, log); err != nil {
			if !errors.Is(err, errSession) || ctx.Err() != nil {
				return err
			}
			// The transaction's outcome is unknown to the client, which
			// cannot begin another: start over with a new session. The
			// batch is retried from the committed offsets, by whichever
			// member owns its partitions then.
			log.Warn("transactional session failed; starting a new one", "err", err)
			sess.Close()
			p.mu.Lock()
			for part := range p.owned {
				p.met.ForgetLag(part)
			}
			clear(p.owned)
			p.ownGen.Add(1)
			clear(p.pending)
			clear(p.failed)
			p.joined = false
			p.mu.Unlock()
			sleep(ctx, time.Second)
			if ctx.Err() != nil {
				return nil
			}
			if sess, err = newSession(); err != nil {
				return err
			}
		}
	}
}

// errSession marks a transact failure after which the session cannot go
// on (franz-go: an End that failed is not retryable).
var errSession = errors.New("transactional session failed")

// anyFailed reports whether recs hold a command of a failed partition.
func (p *Processor) anyFailed(recs []*kgo.Record) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) == 0 {
		return false
	}
	for _, r := range recs {
		if p.failed[r.Partition] != "" {
			return true
		}
	}
	return false
}

// commandRecords returns the records of a poll without the transaction
// markers among them.
func commandRecords(fetches kgo.Fetches) []*kgo.Record {
	recs := fetches.Records()
	cmds := recs[:0]
	for _, r := range recs {
		if !r.Attrs.IsControl() {
			cmds = append(cmds, r)
		}
	}
	return cmds
}

// observeLag sets the consumer lag of each owned partition the poll
// returned records of, from the last stable offset its fetch carried: no
// request of its own. A partition with nothing new keeps its last value (0
// once it was consumed to its end, markers included).
func (p *Processor) observeLag(fetches kgo.Fetches) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 || !p.owned[fp.Partition] {
			return
		}
		end := fp.LastStableOffset
		if end <= 0 {
			end = fp.HighWatermark
		}
		p.met.SetLag(fp.Partition, end-(fp.Records[len(fp.Records)-1].Offset+1))
	})
}

// onAssigned runs after every join of the group (franz-go calls it even
// when nothing is assigned). With the eager balancer (see Run) m is the
// member's whole assignment, and it replaces what the processor believed
// it owned: a revocation or a loss can go unreported (franz-go's
// GroupTransactSession reports only the first until the next End), and a
// partition believed owned is one the follower leaves alone.
func (p *Processor) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.joined = true
	now := make(map[int32]bool, len(m[p.commands]))
	for _, part := range m[p.commands] {
		now[part] = true
	}
	var gone []int32
	for part := range p.owned {
		if !now[part] {
			gone = append(gone, part)
		}
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		p.cfg.Log.Info("commands partitions no longer assigned", "aggregate", p.agg, "topic", p.commands, "partitions", gone)
		p.revokeLocked(gone)
	}
	var added []int32
	for part := range now {
		if !p.owned[part] {
			added = append(added, part)
		}
	}
	if len(added) > 0 {
		slices.Sort(added)
		p.cfg.Log.Info("commands partitions assigned; catching up their state", "aggregate", p.agg, "topic", p.commands, "partitions", added)
	}
	p.ownGen.Add(1)
	for _, part := range added {
		p.owned[part] = true
		p.pending[part] = true
		delete(p.failed, part) // a new assignment tries again
		delete(p.followFailed, part)
	}
	if p.cancelPoll != nil {
		p.cancelPoll()
	}
}

// manageErrors is a kgo hook: the group management loop failed (the
// coordinator forgot the member, the brokers are away) and franz-go gave
// up the member's whole assignment. It is heard here as well as in onLost,
// because the session swallows an onLost that follows another before the
// next End.
type manageErrors struct{ p *Processor }

func (h manageErrors) OnGroupManageError(err error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.joined && len(p.owned) == 0 {
		return
	}
	parts := slices.Sorted(maps.Keys(p.owned))
	p.cfg.Log.Warn("consumer group session ended; its partitions are given up until it joins again",
		"aggregate", p.agg, "group", p.cfg.Names.ProcessorGroup(p.agg), "topic", p.commands, "partitions", parts, "err", err)
	p.joined = false
	p.revokeLocked(parts)
}

func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if parts := m[p.commands]; len(parts) > 0 {
		p.cfg.Log.Info("commands partitions revoked", "aggregate", p.agg, "topic", p.commands, "partitions", parts)
	}
	p.revokeLocked(m[p.commands])
}

// onLost runs when the member lost its membership (its session expired):
// its partitions are gone, and it is not a member until it joins again.
func (p *Processor) onLost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Log.Warn("consumer group membership lost (the group coordinator no longer knew this member); its partitions are given up until it joins again",
		"aggregate", p.agg, "group", p.cfg.Names.ProcessorGroup(p.agg), "topic", p.commands, "partitions", m[p.commands])
	p.joined = false
	p.revokeLocked(m[p.commands])
}

func (p *Processor) revokeLocked(parts []int32) {
	p.ownGen.Add(1)
	for _, part := range parts {
		delete(p.owned, part)
		delete(p.pending, part)
		delete(p.failed, part)
		p.met.ForgetLag(part)
	}
}

// catchUpPending catches up every partition assigned since the last call.
// Partitions that cannot be caught up are paused and reported in Status;
// newlyFailed says some were.
func (p *Processor) catchUpPending(ctx context.Context, sess *kgo.GroupTransactSession) (newlyFailed bool, err error) {
	p.mu.Lock()
	var parts []int32
	for part := range p.pending {
		parts = append(parts, part)
	}
	p.mu.Unlock()
	if len(parts) == 0 {
		return false, nil
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	// A barrier: a follower batch that began before these partitions were
	// assigned has finished, and later ones skip them (see follow).
	p.stateMu.Lock()
	//lint:ignore SA2001 an empty critical section is the point: a barrier
	p.stateMu.Unlock()
	start := time.Now()
	var failed map[int32]error
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		failed, err = p.catchUp(ctx, parts)
		if err == nil {
			err = p.catchUpResults(ctx, parts)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, errBrokers) || ctx.Err() != nil {
			return false, err
		}
		// Kafka is away: wait for it, as the partitions' owner. Their
		// commands wait too (nothing decides on a stale state), and
		// /readyz says they are catching up.
		p.cfg.Log.Warn("catching up failed; retrying", "aggregate", p.agg, "partitions", parts, "retry_in", wait, "err", err)
		if sleep(ctx, wait); ctx.Err() != nil {
			return false, ctx.Err()
		}
		p.mu.Lock()
		parts = slices.DeleteFunc(parts, func(part int32) bool { return !p.pending[part] }) // revoked meanwhile
		p.mu.Unlock()
		if len(parts) == 0 {
			return false, nil
		}
	}
	p.met.Restored(time.Since(start))
	var pause []int32
	p.mu.Lock()
	for _, part := range parts {
		if !p.pending[part] {
			continue // revoked meanwhile
		}
		delete(p.pending, part)
		if ferr := failed[part]; ferr != nil {
			p.failed[part] = ferr.Error()
			pause = append(pause, part)
		}
	}
	p.mu.Unlock()
	if len(pause) > 0 {
		sess.Client().PauseFetchPartitions(map[string][]int32{p.commands: pause})
	}
	p.mu.Lock()
	// Resume what a new assignment cleared of an earlier failure.
	var resume []int32
	for _, part := range parts {
		if p.owned[part] && p.failed[part] == "" {
			resume = append(resume, part)
		}
	}
	p.mu.Unlock()
	sess.Client().ResumeFetchPartitions(map[string][]int32{p.commands: resume})
	return len(pause) > 0, nil
}

// transact runs steps 2 to 5 of the package doc for one batch, and ends
// the spans of its traced commands.
func (p *Processor) transact(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record, log *slog.Logger) error {
	bt := &batchTrace{tracer: p.cfg.Tracer, start: time.Now()}
	err := p.transactBatch(ctx, sess, recs, log, bt)
	bt.end(err)
	return err
}

// pendingResult is a result to produce once the batch's events have
// offsets, with the trace of the command it answers.
type pendingResult struct {
	res   *Result
	trace *commandTrace
}

func (p *Processor) transactBatch(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record, log *slog.Logger, bt *batchTrace) error {
	// Finish the batch even if ctx ends meanwhile: a clean stop commits
	// or aborts what it started instead of leaving a transaction open.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TxnTimeout)
	defer cancel()
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("%w: processor %s: begin transaction: %v", errSession, p.agg, err)
	}
	w := p.newWork()
	w.debug = log.Enabled(ctx, slog.LevelDebug)
	polled := recs
	recs, err := p.skipDecided(w, polled, log)
	if err != nil {
		_, _ = sess.End(tctx, kgo.TryAbort)
		p.met.Aborted(metrics.AbortError)
		return err
	}
	w.redelivered = len(polled) - len(recs)
	tp := newTxnProducer(tctx, sess)
	produce := tp.produce
	// The stages are timed with the wall clock; now (Config.Now) is the
	// time handed to Decide, which tests may fix.
	start := time.Now()
	now := p.cfg.Now()
	var order []pendingResult
	for _, r := range recs {
		ct := p.startCommand(bt, r)
		res, err := p.handle(w, r, now, produce, ct)
		if err != nil {
			_, _ = sess.End(tctx, kgo.TryAbort)
			p.met.Aborted(metrics.AbortError)
			return err
		}
		ct.decided(res)
		if res != nil {
			order = append(order, pendingResult{res, ct})
		}
	}
	decided := time.Now()
	p.met.Stage(metrics.StageDecide, decided.Sub(start))
	if err := p.fault(p.cfg.Faults.BeforeFlush, len(recs)); err != nil {
		log.Warn("aborting transaction", "err", err)
		_, _ = sess.End(tctx, kgo.TryAbort)
		p.met.Aborted(metrics.AbortInjected)
		return nil
	}
	// Step 3: wait for the events' offsets, then produce the results.
	if ok, err := p.settle(ctx, tctx, sess, log, tp); !ok {
		return err
	}
	flushed := time.Now()
	p.met.Stage(metrics.StageProduce, flushed.Sub(decided))
	bt.flushed = flushed
	p.fillPositions(w, order)
	resultRecs := make([]*kgo.Record, 0, len(order))
	for _, pr := range order {
		res := pr.res
		r, whole := p.resultRecord(res)
		// The stored result's bytes go to Pebble as they are; a resend's
		// copy only answers its record.
		if whole && w.results[res.CommandID] == res {
			w.encoded[res.CommandID] = r.Value
		}
		pr.trace.carry(r)
		produce(r)
		resultRecs = append(resultRecs, r)
	}
	snapshots, err := p.produceSnapshots(w, now, produce)
	if err != nil {
		_, _ = sess.End(tctx, kgo.TryAbort)
		p.met.Aborted(metrics.AbortError)
		return err
	}
	// Step 4 begins with every record flushed and checked: End would
	// commit without a record that failed (see txnProducer).
	if ok, err := p.settle(ctx, tctx, sess, log, tp); !ok {
		return err
	}
	if err := p.fault(p.cfg.Faults.BeforeCommit, len(recs)); err != nil {
		log.Warn("aborting transaction", "err", err)
		_, _ = sess.End(tctx, kgo.TryAbort)
		p.met.Aborted(metrics.AbortInjected)
		return nil
	}
	consumed := sess.Client().UncommittedOffsets()[p.commands]
	committed, err := sess.End(tctx, kgo.TryCommit)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		p.met.Aborted(metrics.AbortEnd)
		return fmt.Errorf("%w: end transaction: %v", errSession, err)
	}
	if !committed {
		return p.notCommitted(ctx, tctx, sess, log, polled)
	}
	committedAt := time.Now()
	p.met.Stage(metrics.StageCommit, committedAt.Sub(flushed))
	p.countCommitted(w, committedAt, snapshots)
	bt.committed = committedAt
	if err := p.fault(p.cfg.Faults.AfterCommit, len(recs)); err != nil {
		return fmt.Errorf("processor %s: stopped after commit, before the state store: %w", p.agg, err)
	}
	// End flushed: the result records have their offsets.
	for _, r := range resultRecs {
		w.resultsNext[r.Partition] = max(w.resultsNext[r.Partition], r.Offset+1)
	}
	p.stateMu.Lock()
	err = w.commit()
	p.stateMu.Unlock()
	if err != nil {
		return err
	}
	bt.stored = time.Now()
	p.met.Stage(metrics.StagePebble, bt.stored.Sub(committedAt))
	if w.debug {
		log.Debug("transaction committed", "commands", len(recs), "events", len(w.events), "took", time.Since(start),
			"consumed_offsets", offsetsText(consumed), "results", resultsText(resultRecs))
	}
	return nil
}

// notCommitted handles an End that reports the transaction not committed.
// Usually a rebalance aborted it, and the partitions' owner retries the
// batch from the committed offsets. But franz-go also reports "not
// committed" when the broker answered the commit's EndTxn with an error it
// retries as an abort (UNKNOWN_SERVER_ERROR, say): the broker may have
// committed all the same, and this session's offsets, reset to before the
// batch, would decide its commands a second time against a state that
// lacks the committed events. So the group's committed offsets are read
// back: when they cover the batch, or cannot be read, the session ends and
// the next one catches up from the topics. In a rebalance the new owner
// may have got past the batch already; that case looks the same and is
// answered the same way, at the cost of a session restart (the soak on
// real Kafka saw 15 in 30 minutes, all beside a rebalance).
func (p *Processor) notCommitted(ctx, tctx context.Context, sess *kgo.GroupTransactSession, log *slog.Logger, polled []*kgo.Record) error {
	if ctx.Err() != nil {
		return nil
	}
	group := p.cfg.Names.ProcessorGroup(p.agg)
	done, err := p.batchCommitted(tctx, sess.Client(), group, batchEnds(polled))
	if err != nil || done {
		p.met.Aborted(metrics.AbortUnconfirmed)
		why := "the group's committed offsets cover the batch"
		if err != nil {
			why = fmt.Sprintf("the group's committed offsets could not be read: %v", err)
		}
		log.Warn("transaction reported not committed, but the batch may be past: the broker may have committed it (an EndTxn answered with an error), or the partitions' new owner got past it in a rebalance; starting a new session that catches up from the topics",
			"group", group, "why", why)
		return fmt.Errorf("%w: processor %s: transaction end not confirmed: %s", errSession, p.agg, why)
	}
	p.met.Aborted(metrics.AbortRebalance)
	log.Info("transaction not committed (a rebalance, or an end the broker refused); the batch will be retried by the partitions' owner")
	return nil
}

// batchCommitted reports whether the group's committed offsets reach the
// end of the batch on any of its partitions. It asks for stable offsets,
// waiting out a transaction the coordinator has not finished writing.
func (p *Processor) batchCommitted(ctx context.Context, cl *kgo.Client, group string, ends map[int32]int64) (bool, error) {
	adm := kadm.NewClient(cl)
	for attempt := 0; ; attempt++ {
		offs, err := adm.FetchOffsets(kadm.RequireStable(ctx), group)
		if err == nil {
			err = offs.Error()
		}
		if errors.Is(err, kerr.UnstableOffsetCommit) && attempt < 20 {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		if err != nil {
			return false, err
		}
		for part, end := range ends {
			if o, ok := offs.Lookup(p.commands, part); ok && o.At >= end {
				return true, nil
			}
		}
		return false, nil
	}
}

// batchEnds is, per partition, the offset after the batch's last record.
func batchEnds(recs []*kgo.Record) map[int32]int64 {
	ends := make(map[int32]int64)
	for _, r := range recs {
		ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
	}
	return ends
}

// settle waits for every record produced so far and checks them; when one
// failed it aborts the transaction and reports false, with the error that
// ends the session (a failed flush) or nil (a failed record: the batch is
// retried).
func (p *Processor) settle(ctx, tctx context.Context, sess *kgo.GroupTransactSession, log *slog.Logger, tp *txnProducer) (bool, error) {
	if err := tp.flush(); err != nil {
		_, _ = sess.End(tctx, kgo.TryAbort)
		p.met.Aborted(metrics.AbortFlush)
		return false, fmt.Errorf("%w: processor %s: flush: %v", errSession, p.agg, err)
	}
	if err := tp.check(); err != nil {
		return false, p.abortProduce(ctx, tctx, sess, log, err)
	}
	return true, nil
}

// abortProduce aborts a transaction some of whose records failed or were
// split off (see txnProducer); the batch is retried from the committed
// offsets after a second, so a broker away for a moment is not hammered.
func (p *Processor) abortProduce(ctx, tctx context.Context, sess *kgo.GroupTransactSession, log *slog.Logger, why error) error {
	log.Warn("aborting transaction: a record could not be produced in it; the batch will be retried", "err", why)
	_, _ = sess.End(tctx, kgo.TryAbort)
	if errors.Is(why, errTxnSplit) {
		p.met.Aborted(metrics.AbortSplit)
	} else {
		p.met.Aborted(metrics.AbortProduce)
	}
	sleep(ctx, time.Second)
	return nil
}

// countCommitted counts what a committed batch did: each command's outcome
// and end-to-end time (from its record's timestamp to the commit), the
// events, dead-lettered records and snapshots it wrote.
func (p *Processor) countCommitted(w *work, at time.Time, snapshots int) {
	for _, d := range w.done {
		d.typ.Done(d.outcome, at.Sub(d.sent))
	}
	for _, e := range w.events {
		p.met.EventWritten(e.entry.Type)
	}
	for _, r := range w.dlq {
		p.met.DeadLettered(r)
	}
	p.met.SnapshotsWritten(snapshots)
	p.met.Redelivered(w.redelivered)
}

// fillPositions gives each accepted result to produce the position of its
// events, now that they have offsets: the stored result and the copies
// that answer a resend of its command ID in the same batch.
func (p *Processor) fillPositions(w *work, order []pendingResult) {
	byCommand := map[string]position.Position{}
	for _, e := range w.events {
		pos := byCommand[e.entry.CommandID]
		if pos == nil {
			pos = position.Position{}
			byCommand[e.entry.CommandID] = pos
		}
		pos.Merge(position.Position{{Topic: p.events, Partition: e.entry.Partition}: e.rec.Offset})
	}
	for _, pr := range order {
		if pos := byCommand[pr.res.CommandID]; pos != nil {
			pr.res.Position = pos.Token()
		}
	}
}

// produceSnapshots produces the snapshots due in w, now that the events
// they reflect have offsets, and returns how many.
func (p *Processor) produceSnapshots(w *work, now time.Time, produce func(*kgo.Record)) (int, error) {
	if len(w.snapshots) == 0 {
		return 0, nil
	}
	n := 0
	last := map[*aggState]int64{}
	for _, e := range w.events {
		last[e.agg] = e.rec.Offset
	}
	for _, a := range w.snapshots {
		r, err := p.snapshotRecord(a, last[a], now)
		if err != nil {
			return 0, err
		}
		if recordBytes(r) > MaxRecordBytes {
			// A snapshot only saves replay; this aggregate restores from
			// its previous one (Pebble keeps this one locally).
			p.cfg.Log.Warn("snapshot not written to the snapshots topic: too large", "aggregate", p.agg, "aggregate_id", a.id, "version", a.version, "reason", tooLarge("the snapshot", r))
			continue
		}
		produce(r)
		n++
	}
	return n, nil
}

// expireResults deletes results older than the dedupe window, a bounded
// number at a time, until ctx ends.
func (p *Processor) expireResults(ctx context.Context, log *slog.Logger) {
	every := min(p.cfg.DedupeWindow/10, time.Minute)
	for {
		sleep(ctx, every)
		if ctx.Err() != nil {
			return
		}
		before := p.cfg.Now().Add(-p.cfg.DedupeWindow).UnixMilli()
		for {
			n, err := p.cfg.DB.ExpireResults(p.agg, before, 10000)
			if err != nil {
				log.Warn("expiring old command results failed; trying again later", "err", err)
				break
			}
			if n < 10000 || ctx.Err() != nil {
				break
			}
		}
	}
}

// instanceMember is the group.instance.id of this data directory.
func (p *Processor) instanceMember() string {
	return p.cfg.Names.ProcessorGroup(p.agg) + "." + p.cfg.InstanceID
}

func (p *Processor) fault(hook func(int) error, n int) error {
	if hook == nil {
		return nil
	}
	if err := hook(n); err != nil {
		return fmt.Errorf("%w: %v", ErrInjected, err)
	}
	return nil
}

func (p *Processor) tp(partition int32) position.TP {
	return position.TP{Topic: p.events, Partition: partition}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func offsetsText(m map[int32]kgo.EpochOffset) string {
	parts := slices.Sorted(maps.Keys(m))
	var b []byte
	for _, part := range parts {
		b = fmt.Appendf(b, "%d:%d ", part, m[part].Offset)
	}
	return string(b)
}

func resultsText(recs []*kgo.Record) string {
	lo, hi := map[int32]int64{}, map[int32]int64{}
	for _, r := range recs {
		if v, ok := lo[r.Partition]; !ok || r.Offset < v {
			lo[r.Partition] = r.Offset
		}
		hi[r.Partition] = max(hi[r.Partition], r.Offset)
	}
	var b []byte
	for _, part := range slices.Sorted(maps.Keys(lo)) {
		b = fmt.Appendf(b, "%d:%d-%d ", part, lo[part], hi[part])
	}
	return string(b)
}
