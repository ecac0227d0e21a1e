package processor

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFitDLQ(t *testing.T) {
	small := &kgo.Record{Key: []byte("k"), Value: []byte("v")}
	if got := fitDLQ(small); !bytes.Equal(got.Value, []byte("v")) || len(got.Headers) != 0 {
		t.Fatalf("a small record was changed: %+v", got)
	}
	big := &kgo.Record{Key: []byte("k"), Value: bytes.Repeat([]byte("x"), MaxRecordBytes),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: kafka.HeaderDLQReason, Value: []byte("why")}}}
	got := fitDLQ(big)
	if recordBytes(got) > MaxRecordBytes || len(got.Value) != dlqKeep {
		t.Fatalf("DLQ copy of %d bytes, value %d bytes", recordBytes(got), len(got.Value))
	}
	var truncated, reason string
	for _, h := range got.Headers {
		switch h.Key {
		case kafka.HeaderDLQTruncated:
			truncated = string(h.Value)
		case kafka.HeaderDLQReason:
			reason = string(h.Value)
		}
	}
	if truncated != strconv.Itoa(MaxRecordBytes) || reason != "why" {
		t.Fatalf("headers %+v: want the original length and the reason", got.Headers)
	}
}

func TestResultRecordTooLarge(t *testing.T) {
	p := &Processor{results: "ns.account.results", cfg: Config{Partitions: 4}}
	data, _ := json.Marshal(strings.Repeat("x", MaxRecordBytes))
	res := &Result{CommandID: "c1", Status: StatusAccepted, Version: 2, Events: []ResultEvent{{Type: "Big", Version: 2, Data: data}}}
	r, whole := p.resultRecord(res)
	if whole || recordBytes(r) > MaxRecordBytes {
		t.Fatalf("whole %v, %d bytes: want the events left out", whole, recordBytes(r))
	}
	var got Result
	if err := json.Unmarshal(r.Value, &got); err != nil || !got.EventsOmitted || got.Events != nil || got.Version != 2 || got.Status != StatusAccepted {
		t.Fatalf("result record %s (%v)", r.Value[:min(len(r.Value), 200)], err)
	}
	if len(res.Events) != 1 {
		t.Fatal("the result itself lost its events (Pebble and the HTTP answer keep them)")
	}
	if _, whole := p.resultRecord(&Result{CommandID: "c2"}); !whole {
		t.Fatal("a small result was cut")
	}
}
