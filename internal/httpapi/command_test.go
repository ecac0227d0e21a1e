package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/strata-es/strata/aggregates"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
	"github.com/strata-es/strata/internal/codec"
	"github.com/strata-es/strata/internal/position"
	"github.com/strata-es/strata/internal/processor"
	"github.com/strata-es/strata/schemas"
	"go.opentelemetry.io/otel/trace"
)

// senderfake checks a request as processor.Sender does (aggregate, IDs,
// type, the command's data and rules) and accepts it without Kafka,
// remembering what it was given.
type senderfake struct {
	codecs map[string]codec.Codec

	mu   sync.Mutex
	sent []sent
}

type sent struct {
	agg, id string
	req     processor.Request
	cmd     aggregates.Command
	span    trace.SpanContext // of the context Send was given
}

func newSenderfake() *senderfake {
	cat := schemas.Default()
	return &senderfake{codecs: map[string]codec.Codec{
		account.Name: {Type: account.Type, Catalog: cat},
		order.Name:   {Type: order.Type, Catalog: cat},
	}}
}

func (s *senderfake) Send(ctx context.Context, agg, id string, req processor.Request) (*processor.Result, error) {
	c, ok := s.codecs[agg]
	if !ok {
		return nil, fmt.Errorf("%w: aggregate type %q", aggregates.ErrNotFound, agg)
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
		return nil, aggregates.Invalid(`"type" is required`)
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
	s.mu.Lock()
	s.sent = append(s.sent, sent{agg, id, req, cmd, trace.SpanContextFromContext(ctx)})
	s.mu.Unlock()
	return &processor.Result{CommandID: req.CommandID, Aggregate: agg, AggregateID: id, Status: processor.StatusAccepted, Version: 1}, nil
}

func (s *senderfake) last() (sent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == 0 {
		return sent{}, false
	}
	v := s.sent[len(s.sent)-1]
	s.sent = s.sent[:0]
	return v, true
}

// postCommand posts body to the real handler, with the fake behind it.
func postCommand(h http.Handler, agg, id string, body []byte) *httptest.ResponseRecorder {
	// Every byte of the ID escaped that the mux would otherwise read as
	// path syntax: '/' and dot segments.
	path := "/v1/commands/" + agg + "/" + strings.ReplaceAll(url.PathEscape(id), ".", "%2E")
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestCommandBodies: the envelope of a command is read strictly, and each
// kind of bad body gets a 4xx naming its problem.
func TestCommandBodies(t *testing.T) {
	fake := newSenderfake()
	h := Handler(Config{Sender: fake, Applied: position.NewTracker()})
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	for _, tc := range []struct {
		name, id, body string
		code           int
		msg            string
	}{
		{"accepted", "acc-1", `{"type":"Deposit","data":{"amount":5}}`, 200, ""},
		{"a closing brace after the object", "acc-1", `{"type":"Deposit","data":{"amount":5}}}`, 400, "after the JSON value"},
		{"a closing bracket after the object", "acc-1", `{"type":"Deposit","data":{"amount":5}} ]`, 400, "after the JSON value"},
		{"a second object", "acc-1", `{"type":"Deposit","data":{"amount":5}} {}`, 400, "after the JSON value"},
		{"empty body", "acc-1", ``, 400, "body must be a JSON object"},
		{"invalid UTF-8 in the type", "acc-1", "{\"type\":\"Dep\xffosit\",\"data\":{\"amount\":5}}", 400, "not valid UTF-8 at byte 12"},
		{"invalid UTF-8 in a string of the data", "acc-1", "{\"type\":\"OpenAccount\",\"data\":{\"owner\":\"\xc3\x28\"}}", 400, "not valid UTF-8 at byte 39"},
		{"a UTF-16 surrogate half", "acc-1", "{\"type\":\"OpenAccount\",\"data\":{\"owner\":\"\xed\xa0\x80\"}}", 400, "not valid UTF-8"},
		{"100k nested arrays as data", "acc-1", `{"type":"Deposit","data":` + deep + `}`, 400, "exceeded max depth"},
		{"100k nested arrays as the body", "acc-1", deep, 400, "exceeded max depth"},
		{"type is a number", "acc-1", `{"type":5,"data":{"amount":5}}`, 400, "cannot unmarshal number into Go struct field Request.type of type string"},
		{"data is a string", "acc-1", `{"type":"Deposit","data":"5"}`, 400, "cannot unmarshal string"},
		{"expected_version is a string", "acc-1", `{"type":"Deposit","data":{"amount":5},"expected_version":"3"}`, 400, "expected_version"},
		{"expected_version is negative", "acc-1", `{"type":"Deposit","data":{"amount":5},"expected_version":-1}`, 400, "expected_version"},
		{"expected_version is fractional", "acc-1", `{"type":"Deposit","data":{"amount":5},"expected_version":1.5}`, 400, "expected_version"},
		{"expected_version overflows", "acc-1", `{"type":"Deposit","data":{"amount":5},"expected_version":18446744073709551616}`, 400, "expected_version"},
		{"command_id is a number", "acc-1", `{"type":"Deposit","data":{"amount":5},"command_id":7}`, 400, "command_id"},
		{"command_id with a control character", "acc-1", `{"type":"Deposit","data":{"amount":5},"command_id":"a\u0000b"}`, 400, "command_id: id \"a\\x00b\" contains a control character"},
		{"command_id too long", "acc-1", `{"type":"Deposit","data":{"amount":5},"command_id":"` + strings.Repeat("c", 257) + `"}`, 400, "command_id: id is 257 bytes"},
		{"amount overflows int64", "acc-1", `{"type":"Deposit","data":{"amount":9223372036854775808}}`, 400, "cannot unmarshal number 9223372036854775808"},
		{"a duplicate key: the last wins, as in encoding/json", "acc-1", `{"type":"Withdraw","type":"Deposit","data":{"amount":5}}`, 200, ""},
		{"ID with a NUL", "a\x00b", `{"type":"Deposit","data":{"amount":5}}`, 400, "control character"},
		{"ID with DEL", "a\x7fb", `{"type":"Deposit","data":{"amount":5}}`, 400, "control character"},
		{"ID with a newline", "a\nb", `{"type":"Deposit","data":{"amount":5}}`, 400, "control character"},
		{"ID with a C1 control character", "a\u0085b", `{"type":"Deposit","data":{"amount":5}}`, 400, "control character"},
		{"ID with a slash", "a/b", `{"type":"Deposit","data":{"amount":5}}`, 400, "contains '/'"},
		{"ID dot-dot", "..", `{"type":"Deposit","data":{"amount":5}}`, 400, `id ".." is not allowed`},
		{"ID dot", ".", `{"type":"Deposit","data":{"amount":5}}`, 400, `id "." is not allowed`},
		{"ID not UTF-8", "a\xffb", `{"type":"Deposit","data":{"amount":5}}`, 400, "not valid UTF-8"},
		{"ID too long", strings.Repeat("i", 257), `{"type":"Deposit","data":{"amount":5}}`, 400, "longer than the limit"},
		{"empty ID", "", `{"type":"Deposit","data":{"amount":5}}`, 404, "no route for POST /v1/commands/account/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := postCommand(h, account.Name, tc.id, []byte(tc.body))
			var out map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, not a JSON answer: %q (%v)", rec.Code, rec.Body, err)
			}
			msg, _ := out["error"].(string)
			if rec.Code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("status %d %q, want %d and an error containing %q", rec.Code, msg, tc.code, tc.msg)
			}
		})
	}
}

// TestCommandDataIsCompacted: what the sender gets holds no padding, so a
// body within the size limit never makes a command record larger than
// Kafka takes.
func TestCommandDataIsCompacted(t *testing.T) {
	fake := newSenderfake()
	h := Handler(Config{Sender: fake, Applied: position.NewTracker()})
	pad := strings.Repeat(" \n\t", (MaxBodyBytes-1200)/3)
	body := `{"type":"Deposit","data":{"amount":` + pad + `5` + pad[:1000] + `}}`
	if len(body) > MaxBodyBytes {
		t.Fatalf("body of %d bytes", len(body))
	}
	if rec := postCommand(h, account.Name, "acc-1", []byte(body)); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got, _ := fake.last()
	if string(got.req.Data) != `{"amount":5}` {
		t.Fatalf("data sent: %.100q", got.req.Data)
	}
	// One byte over the limit, padding or not, is refused whole.
	body = `{"type":"Deposit","data":{"amount":5}}` + strings.Repeat(" ", MaxBodyBytes)
	if rec := postCommand(h, account.Name, "acc-1", []byte(body)); rec.Code != 413 || !strings.Contains(rec.Body.String(), "body larger than 1048576 bytes") {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// FuzzCommandBody drives the real handler of POST
// /v1/commands/{aggregate}/{id} with any ID and body. It must answer in
// JSON, with 200 exactly when the body is one JSON object of the envelope
// (checked by an independent strict decoding) holding a valid command,
// with a 4xx and a message otherwise; and what reaches the sender must be
// what the body said.
func FuzzCommandBody(f *testing.F) {
	for _, seed := range []struct{ id, body string }{
		{"acc-1", `{"type":"Deposit","data":{"amount":5}}`},
		{"acc-1", `{"type":"OpenAccount","data":{"owner":"ada","initial_balance":10,"currency":"EUR"},"expected_version":0,"command_id":"c-1"}`},
		{"ord-1", `{"type":"CreateOrder","data":{"customer_id":"cus-1","items":[{"sku":"A-1","qty":2,"unit_price":150}]}}`},
		{"acc-1", `{"type":"Withdraw","data":{"amount":-1}}`},
		{"acc-1", `{"type":"Deposit","data":{"amount":5}}}`},
		{"acc-1", "{\"type\":\"Dep\xffosit\"}"},
		{"..", `{"type":"Deposit","data":{"amount":5}}`},
		{"a/b", `{"type":"Deposit","data":{"amount":5}}`},
		{"a\x01", `{"type":"Deposit","data":{"amount":5}}`},
		{"", `{"type":"Deposit"}`},
		{"acc-1", `[[[[[[[[[[]]]]]]]]]]`},
		{"acc-1", `{"type":"Deposit","data":{"amount":5},"extra":true}`},
		{"acc-1", `{"type":"Deposit","data":null,"expected_version":18446744073709551615}`},
		{"acc-1", ` {"type" : "Deposit" , "data" : { "amount" : 5 } } ` + "\n"},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	fake := newSenderfake()
	h := Handler(Config{Sender: fake, Applied: position.NewTracker()})
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		agg := account.Name
		if strings.HasPrefix(id, "ord") {
			agg = order.Name
		}
		rec := postCommand(h, agg, id, body)
		var out struct {
			Error  *string
			Status string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, not a JSON answer: %q (%v)", rec.Code, rec.Body, err)
		}
		got, reached := fake.last()
		var want processor.Request
		envelopeOK := utf8.Valid(body) && codec.StrictJSON(body, &want) == nil
		switch {
		case rec.Code == 404:
			// The mux finds no route for some invalid IDs ("", "/"): a
			// valid one always has one.
			if aggregates.CheckID(id) == nil || reached || out.Error == nil {
				t.Fatalf("404 for ID %q: %q", id, rec.Body)
			}
			return
		case rec.Code == 200:
			if !envelopeOK || !reached || out.Status != processor.StatusAccepted {
				t.Fatalf("200 for a body the strict decoding refuses (%v) or that did not reach the sender (%v): %q", envelopeOK, reached, body)
			}
		case rec.Code == 400:
			if out.Error == nil || *out.Error == "" {
				t.Fatalf("400 without a message: %q", rec.Body)
			}
			if reached {
				t.Fatalf("400 for a command the sender accepted: %q", body)
			}
			// Refused by the handler or by the sender: either way, the
			// sender refuses what the strict decoding reads.
			if envelopeOK {
				if _, err := fake.Send(context.Background(), agg, id, want); err == nil {
					t.Fatalf("400 (%s) for a body whose command the sender accepts: %q", *out.Error, body)
				}
			}
			return
		case rec.Code == 413:
			if len(body) <= MaxBodyBytes || out.Error == nil {
				t.Fatalf("413 for %d bytes: %q", len(body), rec.Body)
			}
			return
		default:
			t.Fatalf("status %d for %q: %q", rec.Code, body, rec.Body)
		}
		// Accepted: the sender got the body's envelope, the data compacted
		// but the same JSON value.
		if got.agg != agg || got.id != id || got.req.Type != want.Type || got.req.CommandID != want.CommandID ||
			(got.req.ExpectedVersion == nil) != (want.ExpectedVersion == nil) ||
			want.ExpectedVersion != nil && *got.req.ExpectedVersion != *want.ExpectedVersion {
			t.Fatalf("sent %+v for %s %q, body %q", got.req, agg, id, body)
		}
		var a, b any
		if err := errors.Join(unmarshalOrNil(got.req.Data, &a), unmarshalOrNil(want.Data, &b)); err != nil {
			t.Fatalf("data %q / %q: %v", got.req.Data, want.Data, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, got.req.Data); err != nil || !bytes.Equal(compact.Bytes(), got.req.Data) {
			t.Fatalf("data sent not compacted: %q", got.req.Data)
		}
		if mustMarshal(t, a) != mustMarshal(t, b) {
			t.Fatalf("data sent %q, body's %q", got.req.Data, want.Data)
		}
	})
}

func unmarshalOrNil(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
