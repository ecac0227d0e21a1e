package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Client timeouts. An instance answers 504 after 10 s without a result;
// a paused one answers nothing, so the client gives up a little later and
// retries elsewhere.
const (
	httpTimeout   = 15 * time.Second
	resultTimeout = 20 * time.Second // Kafka clients: produce → result
	giveUpAfter   = 90 * time.Second // a command without an answer by then stays unanswered
)

// client runs one workload client until stop is closed: it sends commands
// one at a time (HTTP or the commands topic), retries each with its
// command ID until it has an answer, and now and then resends a command
// already answered, at once or much later, to check it is not applied
// again.
func (s *soak) client(ctx context.Context, n int, via string, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(n)))
	var send func(*sent) *answer
	switch via {
	case "http":
		hc := &http.Client{Timeout: httpTimeout}
		defer hc.CloseIdleConnections()
		send = func(sc *sent) *answer { return s.postHTTP(ctx, hc, rng, sc, stop) }
	default:
		kc, err := kgo.NewClient(append(s.kafkaOpts(), kgo.ProducerLinger(0))...)
		if err != nil {
			s.logf("client %d: %v", n, err)
			return
		}
		defer kc.Close()
		send = func(sc *sent) *answer { return s.produce(ctx, kc, sc, stop) }
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}
	for i := 1; !stopped(); i++ {
		c := s.world.next(rng, fmt.Sprintf("%c%d-%d", via[0], n, i))
		sc := s.ledger.add(c, via)
		a := send(sc)
		if a == nil {
			s.ledger.unanswered.Add(1)
			continue
		}
		s.world.learn(c, a)
		switch r := rng.IntN(100); {
		case r < 5:
			// A resend at once, as a client does that missed the answer.
			s.ledger.resends.Add(1)
			send(sc)
		case r < 8:
			// A late resend of a command answered earlier, perhaps
			// before a partition moved or an instance lost its disk.
			if old := s.ledger.old(rng); old != nil {
				s.ledger.resends.Add(1)
				send(old)
			}
		case r < 13 && a.Status == statusAccepted && via == "http":
			s.readYourWrites(ctx, rng, c, a)
		}
	}
}

// postHTTP posts sc's command to a random instance until one answers with
// a result; nil when it gave up or the workload stopped.
func (s *soak) postHTTP(ctx context.Context, hc *http.Client, rng *rand.Rand, sc *sent, stop <-chan struct{}) *answer {
	c := sc.cmd
	body := map[string]any{"type": c.Type, "data": c.Data, "command_id": c.ID}
	if c.Expected != nil {
		body["expected_version"] = *c.Expected
	}
	b, _ := json.Marshal(body)
	urls := s.cluster.urls()
	avoid := -1
	deadline := time.Now().Add(giveUpAfter)
	for {
		i := rng.IntN(len(urls))
		if i == avoid && len(urls) > 1 {
			i = (i + 1 + rng.IntN(len(urls)-1)) % len(urls)
		}
		s.ledger.attempt(sc)
		a, kind := postOnce(ctx, hc, urls[i]+"/v1/commands/"+c.Agg+"/"+c.AggID, b)
		if a != nil {
			a.Via = fmt.Sprintf("HTTP %s from instance %d", kind, i+1)
			s.ledger.answered(sc, a)
			return a
		}
		s.ledger.failed(sc, kind)
		avoid = i
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(50+rng.IntN(250)) * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil
		}
		s.ledger.retries.Add(1)
	}
}

// postOnce posts a command once. It returns the answer, or nil and the
// kind of failure (not an answer: the client may resend).
func postOnce(ctx context.Context, hc *http.Client, url string, body []byte) (*answer, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, "request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "transport error"
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "reading the answer failed"
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusBadRequest:
		var a answer
		if err := json.Unmarshal(raw, &a.result); err != nil || a.Status == "" {
			// A 400 from the API's own checks carries no result: the
			// command was never sent. The workload sends only valid
			// commands, so this is reported by the checks.
			a.result = result{Status: "http " + strconv.Itoa(resp.StatusCode), Error: string(bytes.TrimSpace(raw))}
		}
		a.At = time.Now()
		return &a, strconv.Itoa(resp.StatusCode)
	}
	return nil, "HTTP " + strconv.Itoa(resp.StatusCode)
}

// readYourWrites reads what an acknowledged command wrote, with its
// position, from a random instance: the aggregate must be at least at the
// acknowledged version, and so must the view of it. A 503 (not applied in
// time) proves nothing; an older version is a problem.
func (s *soak) readYourWrites(ctx context.Context, rng *rand.Rand, c *command, a *answer) {
	if a.Position == "" {
		return
	}
	urls := s.cluster.urls()
	i := rng.IntN(len(urls))
	view := "accounts"
	if c.Agg != "account" {
		view = "orders"
	}
	hc := &http.Client{Timeout: httpTimeout}
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/v1/aggregates/" + c.Agg + "/" + c.AggID, "/v1/views/" + view + "/" + c.AggID} {
		var got struct {
			Version uint64 `json:"version"`
		}
		code, err := getJSON(ctx, hc, urls[i]+path+"?position="+a.Position, &got)
		s.stats.rywReads.Add(1)
		if err != nil || code != http.StatusOK {
			continue
		}
		if got.Version < a.Version {
			s.problems.add(probLost, "%s: instance %d served version %d at %s?position=… after command %s was acknowledged at version %d (%s)",
				c.key(), i+1, got.Version, path, c.ID, a.Version, a.Via)
		}
	}
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: %w", url, err)
	}
	return resp.StatusCode, nil
}

// produce writes sc's command to the commands topic, as any Kafka client
// would, and waits for its result on the results topic; without a result
// in time it produces it again with the same command ID. nil when it gave
// up or the workload stopped.
func (s *soak) produce(ctx context.Context, kc *kgo.Client, sc *sent, stop <-chan struct{}) *answer {
	c := sc.cmd
	rec := &kgo.Record{
		Topic: s.names.Commands(c.Agg),
		Key:   []byte(c.AggID),
		Value: c.Data,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderCommandType, Value: []byte(c.Type)},
			{Key: kafka.HeaderCommandID, Value: []byte(c.ID)},
			{Key: kafka.HeaderContentType, Value: []byte(kafka.ContentTypeJSON)},
		},
	}
	if c.Expected != nil {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: kafka.HeaderExpectedVersion, Value: strconv.AppendUint(nil, *c.Expected, 10)})
	}
	deadline := time.Now().Add(giveUpAfter)
	for {
		ch, forget := s.results.wait(c.ID)
		s.ledger.attempt(sc)
		pctx, cancel := context.WithTimeout(ctx, httpTimeout)
		// A fresh record each time: kgo owns a record until its promise.
		r := *rec
		err := kafka.ProduceSync(pctx, kc, &r)
		cancel()
		if err != nil {
			forget()
			s.ledger.failed(sc, "produce failed")
		} else {
			select {
			case res := <-ch:
				forget()
				a := &answer{result: *res, Via: "results topic", At: time.Now()}
				s.ledger.answered(sc, a)
				return a
			case <-time.After(resultTimeout):
				forget()
				s.ledger.failed(sc, "no result in time")
			case <-ctx.Done():
				forget()
				return nil
			}
		}
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil
		}
		s.ledger.retries.Add(1)
	}
}

// dispatcher reads the results topics (read_committed) and hands each
// result to the clients waiting for its command ID.
type dispatcher struct {
	mu      sync.Mutex
	waiting map[string][]chan *result
}

func newDispatcher() *dispatcher { return &dispatcher{waiting: map[string][]chan *result{}} }

// wait registers for the next result of id; call forget when done.
func (d *dispatcher) wait(id string) (<-chan *result, func()) {
	ch := make(chan *result, 1)
	d.mu.Lock()
	d.waiting[id] = append(d.waiting[id], ch)
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		chs := d.waiting[id]
		for i, c := range chs {
			if c == ch {
				chs = append(chs[:i], chs[i+1:]...)
				break
			}
		}
		if len(chs) == 0 {
			delete(d.waiting, id)
		} else {
			d.waiting[id] = chs
		}
	}
}

// run consumes the results topics from their start until ctx ends.
func (d *dispatcher) run(ctx context.Context, opts []kgo.Opt, topics ...string) error {
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachRecord(func(r *kgo.Record) {
			d.mu.Lock()
			chs := d.waiting[string(r.Key)]
			delete(d.waiting, string(r.Key))
			d.mu.Unlock()
			if len(chs) == 0 {
				return
			}
			var res result
			if err := json.Unmarshal(r.Value, &res); err != nil {
				res = result{CommandID: string(r.Key), Status: "unreadable result", Error: err.Error()}
			}
			for _, ch := range chs {
				ch <- &res
			}
		})
	}
}
