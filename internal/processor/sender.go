package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/strata-es/strata/internal/codec"
	"strconv"
	"sync"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/tracing"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Request is a command as a client sends it (HTTP body, CLI).
type Request struct {
	Type            string          `json:"type"`
	Data            json.RawMessage `json:"data"`
	ExpectedVersion *uint64         `json:"expected_version,omitempty"`
	CommandID       string          `json:"command_id,omitempty"`
}

// ErrTimeout is returned by Send when no result arrived in time. The
// command may still be processed: resend it with the same command ID to
// learn its outcome without applying it twice.
var ErrTimeout = errors.New("strata: timed out waiting for the command's result")

// Sender produces commands to the commands topics and waits for their
// results on the results topics. It is safe for concurrent use.
type Sender struct {
	names      kafka.Names
	partitions int32
	codecs     map[string]codec.Codec
	producer   *kgo.Client
	consumer   *kgo.Client

	mu      sync.Mutex
	waiting map[string][]chan *Result
}

// NewSender returns a Sender for the given aggregate types. The results
// topics must exist: it starts reading them at their current end, so that
// every result produced after NewSender returns is seen.
func NewSender(ctx context.Context, opts []kgo.Opt, names kafka.Names, partitions int32, codecs map[string]codec.Codec) (*Sender, error) {
	producer, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)...)
	if err != nil {
		return nil, err
	}
	var topics []string
	for agg := range codecs {
		topics = append(topics, names.Results(agg))
	}
	ends, err := kafka.ListOffsets(ctx, kadm.NewClient(producer).ListEndOffsets, partitions, topics...)
	if err != nil {
		producer.Close()
		return nil, fmt.Errorf("list end offsets of the results topics: %w", err)
	}
	start := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if start[o.Topic] == nil {
			start[o.Topic] = map[int32]kgo.Offset{}
		}
		start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	consumer, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		producer.Close()
		return nil, err
	}
	return &Sender{
		names: names, partitions: partitions, codecs: codecs,
		producer: producer, consumer: consumer,
		waiting: map[string][]chan *Result{},
	}, nil
}

// Close closes the Kafka clients.
func (s *Sender) Close() {
	s.producer.Close()
	s.consumer.Close()
}

// Run dispatches results to waiting senders until ctx ends.
func (s *Sender) Run(ctx context.Context) error {
	for {
		fetches := s.consumer.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			s.mu.Lock()
			chs := s.waiting[string(r.Key)]
			delete(s.waiting, string(r.Key))
			s.mu.Unlock()
			if len(chs) == 0 {
				return
			}
			var res Result
			if err := json.Unmarshal(r.Value, &res); err != nil {
				res = Result{CommandID: string(r.Key), Status: StatusInvalid, Error: "unreadable result record: " + err.Error()}
			}
			for _, ch := range chs {
				ch <- &res
			}
		})
	}
}

// Check decodes and validates a request without sending it: unknown
// aggregates wrap aggregates.ErrNotFound, bad commands ErrInvalid.
func (s *Sender) Check(agg, id string, req *Request) (aggregates.Command, error) {
	c, ok := s.codecs[agg]
	if !ok {
		return nil, fmt.Errorf("%w: aggregate type %q (known: %v)", aggregates.ErrNotFound, agg, s.aggregates())
	}
	if err := aggregates.CheckID(id); err != nil {
		return nil, aggregates.Invalid("aggregate ID: %v", err)
	}
	if req.CommandID != "" {
		if err := aggregates.CheckID(req.CommandID); err != nil {
			return nil, aggregates.Invalid("command_id: %v", err)
		}
	}
	if req.Type == "" {
		return nil, aggregates.Invalid(`"type" is required: one of %v`, c.Type.CommandTypes())
	}
	cmd, err := c.CommandJSON(req.Type, req.Data)
	if err != nil {
		return nil, err
	}
	if v, ok := cmd.(aggregates.Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return cmd, nil
}

func (s *Sender) aggregates() []string {
	var out []string
	for a := range s.codecs {
		out = append(out, a)
	}
	return out
}

// Send checks req, produces it to the aggregate's commands topic and waits
// for its result until ctx ends (then ErrTimeout). A request without a
// command ID gets a random one. The span context in ctx, if any (an HTTP
// request's), goes with the command record in its traceparent header.
func (s *Sender) Send(ctx context.Context, agg, id string, req Request) (*Result, error) {
	if _, err := s.Check(agg, id, &req); err != nil {
		return nil, err
	}
	if req.CommandID == "" {
		req.CommandID = NewCommandID()
	}
	data := req.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	r := &kgo.Record{
		Topic: s.names.Commands(agg),
		Key:   []byte(id),
		Value: data,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderCommandType, Value: []byte(req.Type)},
			{Key: kafka.HeaderCommandID, Value: []byte(req.CommandID)},
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeJSON)},
		},
	}
	if req.ExpectedVersion != nil {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: kafka.HeaderExpectedVersion, Value: strconv.AppendUint(nil, *req.ExpectedVersion, 10)})
	}
	r.Headers = append(r.Headers, tracing.Headers(ctx)...)
	if n := recordBytes(r); n > MaxRecordBytes {
		return nil, aggregates.Invalid("the command would be a record of %d bytes, over the %d-byte limit of a Kafka record", n, MaxRecordBytes)
	}
	ch := make(chan *Result, 1)
	s.mu.Lock()
	s.waiting[req.CommandID] = append(s.waiting[req.CommandID], ch)
	s.mu.Unlock()
	defer s.forget(req.CommandID, ch)
	if err := kafka.ProduceSync(ctx, s.producer, r); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (command_id %s)", ErrTimeout, req.CommandID)
		}
		return nil, fmt.Errorf("produce command %s to %s: %w", req.CommandID, r.Topic, err)
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (command_id %s): resend with the same command_id to get its outcome", ErrTimeout, req.CommandID)
	}
}

func (s *Sender) forget(id string, ch chan *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chs := s.waiting[id]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i], chs[i+1:]...)
			break
		}
	}
	if len(chs) == 0 {
		delete(s.waiting, id)
	} else {
		s.waiting[id] = chs
	}
}

// NewCommandID returns a random 128-bit command ID in hex.
func NewCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
