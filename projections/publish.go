package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/store"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

// publisher writes a view's changed rows to its compacted topic.
//
// Every instance keeps every view, but only one publishes it: the one the
// consumer group <topic>.publisher assigns the single partition of the
// topic <topic>.publisher to. Two publishers could interleave an old and a
// new value of a row and leave the old one last. A new publisher first
// republishes every row from its own copy, so the topic converges on the
// current view whatever the old one wrote during the handover.
type publisher struct {
	topic   string
	subject string
	rowType reflect.Type
	cat     *schemas.Catalog
	prod    *kgo.Client
	elect   *kgo.Client

	gen       atomic.Int64 // bumped on each assignment
	leader    atomic.Bool
	published int64 // the gen republished last
	// elected is called once this instance becomes the publisher, from
	// the election client's goroutine: the runner wakes up to republish
	// the view, which may see no change for a long time.
	elected func()
}

// ElectionTopic is the one-partition topic whose owner publishes a view.
func ElectionTopic(viewTopic string) string { return viewTopic + ".publisher" }

func newPublisher(opts []kgo.Opt, cat *schemas.Catalog, p Projection, topic string, elected func()) (*publisher, error) {
	if p.Row == nil {
		return nil, fmt.Errorf("projection %s publishes but has no Row type", p.Name)
	}
	pub := &publisher{topic: topic, subject: "views/" + p.Name, rowType: reflect.TypeOf(p.Row), cat: cat, elected: elected}
	var err error
	pub.prod, err = kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return nil, err
	}
	election := ElectionTopic(topic)
	pub.elect, err = kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumerGroup(election), kgo.ConsumeTopics(election),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[election]) > 0 {
				pub.gen.Add(1)
				pub.leader.Store(true)
				if pub.elected != nil {
					pub.elected()
				}
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[election]) > 0 {
				pub.leader.Store(false)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[election]) > 0 {
				pub.leader.Store(false)
			}
		}),
	)...)
	if err != nil {
		pub.prod.Close()
		return nil, err
	}
	return pub, nil
}

// run keeps the election's group membership alive until ctx ends.
func (pub *publisher) run(ctx context.Context) {
	for ctx.Err() == nil {
		if pub.elect.PollFetches(ctx).IsClientClosed() {
			return
		}
	}
}

func (pub *publisher) close() {
	pub.elect.Close()
	pub.prod.Close()
}

// Leader reports whether this instance publishes the view.
func (pub *publisher) Leader() bool { return pub.leader.Load() }

// behind reports whether this instance publishes the view and has not yet
// republished it since it was elected. Only the runner's goroutine calls
// it (and publish).
func (pub *publisher) behind() bool { return pub.leader.Load() && pub.gen.Load() != pub.published }

func (pub *publisher) record(key string, raw json.RawMessage) (*kgo.Record, error) {
	r := &kgo.Record{Key: []byte(key)}
	if raw == nil {
		return r, nil // a tombstone
	}
	v := reflect.New(pub.rowType)
	if err := json.Unmarshal(raw, v.Interface()); err != nil {
		return nil, fmt.Errorf("row %q: %w", key, err)
	}
	b, err := pub.cat.Encode(pub.subject, v.Interface())
	if err != nil {
		return nil, fmt.Errorf("row %q: %w", key, err)
	}
	r.Value = b
	return r, nil
}

// publish writes the changed rows (nil value: deleted), each with the trace
// headers of the event that changed it last, and waits until Kafka has
// them; when this instance just became the publisher, it first republishes
// the whole view from db. It retries until it succeeds or ctx ends.
func (pub *publisher) publish(ctx context.Context, db *store.DB, view string, changed *changes) error {
	if !pub.leader.Load() {
		return nil
	}
	var recs []*kgo.Record
	if gen := pub.gen.Load(); gen != pub.published {
		prefix := append(store.Key(kindRow, view), 0)
		var rerr error
		err := db.Scan(prefix, func(k, v []byte) bool {
			r, err := pub.record(string(k[len(prefix):]), append(json.RawMessage(nil), v...))
			if err != nil {
				rerr = err
				return false
			}
			recs = append(recs, r)
			return true
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		pub.published = gen
	}
	for k, v := range changed.rows {
		r, err := pub.record(k, v)
		if err != nil {
			return err
		}
		r.Headers = append(r.Headers, changed.trace[k]...)
		recs = append(recs, r)
	}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := kafka.ProduceSync(ctx, pub.prod, recs...)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CheckPublish checks that a published projection's Row type encodes with
// its view schema, schemas/views/<name>.v<N>.avsc.
func CheckPublish(cat *schemas.Catalog, p Projection) error {
	if p.Row == nil {
		return fmt.Errorf("projection %s publishes but has no Row type", p.Name)
	}
	subject := "views/" + p.Name
	if _, ok := cat.Subject(subject); !ok {
		return fmt.Errorf("projection %s publishes but there is no schemas/%s.v1.avsc", p.Name, subject)
	}
	v := reflect.New(reflect.TypeOf(p.Row)).Interface()
	if _, err := cat.Encode(subject, v); err != nil {
		return fmt.Errorf("projection %s: its Row type does not match schemas/%s: %w", p.Name, subject, err)
	}
	return nil
}
