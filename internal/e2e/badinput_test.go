package e2e

import (
	"strings"
	"testing"
)

// testBadHTTPInput: every malformed request gets a 4xx naming the problem,
// and the server keeps serving.
func testBadHTTPInput(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})
	s.send(t, "acc-b", "OpenAccount", `{"owner":"bea","initial_balance":10}`)
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"malformed JSON", "POST", "/v1/commands/account/acc-b", `{"type":`, 400, "body must be a JSON object"},
		{"not an object", "POST", "/v1/commands/account/acc-b", `[1,2]`, 400, "body must be a JSON object"},
		{"unknown field", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":1},"extra":1}`, 400, `unknown field "extra"`},
		{"trailing data", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":1}} {}`, 400, "after the JSON value"},
		{"missing type", "POST", "/v1/commands/account/acc-b", `{"data":{"amount":1}}`, 400, `"type" is required`},
		{"unknown command type", "POST", "/v1/commands/account/acc-b", `{"type":"Close"}`, 400, `unknown command type "Close"`},
		{"unknown aggregate", "POST", "/v1/commands/spaceship/s-1", `{"type":"Launch"}`, 404, `aggregate type "spaceship"`},
		{"negative amount", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":-5}}`, 400, "amount must be greater than zero, got -5"},
		{"zero amount", "POST", "/v1/commands/account/acc-b", `{"type":"Withdraw","data":{"amount":0}}`, 400, "amount must be greater than zero"},
		{"fractional amount", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":1.5}}`, 400, "cannot unmarshal number 1.5"},
		{"amount as string", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":"5"}}`, 400, "cannot unmarshal string"},
		{"unknown data field", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":5,"currency":"EUR"}}`, 400, `unknown field "currency"`},
		{"ID too long", "POST", "/v1/commands/account/" + long, `{"type":"Deposit","data":{"amount":1}}`, 400, "longer than the limit"},
		{"ID with control character", "POST", "/v1/commands/account/a%01b", `{"type":"Deposit","data":{"amount":1}}`, 400, "control character"},
		{"ID dot-dot", "GET", "/v1/aggregates/account/%2E%2E", "", 400, `id ".." is not allowed`},
		{"ID with encoded slash", "GET", "/v1/aggregates/account/a%2Fb", "", 400, "contains '/'"},
		{"empty ID", "POST", "/v1/commands/account/", `{"type":"Deposit"}`, 404, "no route"},
		{"bad command ID", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":1},"command_id":"a\u0001"}`, 400, "command_id"},
		{"missing aggregate", "GET", "/v1/aggregates/account/nobody", "", 404, `"nobody" does not exist`},
		{"unknown view", "GET", "/v1/views/galaxies/g-1", "", 404, `unknown view "galaxies"`},
		{"bad position token", "GET", "/v1/views/accounts/acc-b?position=%21%21", "", 400, "bad position token"},
		{"bad version", "GET", "/v1/aggregates/account/acc-b?version=x", "", 400, "want a version number"},
		{"bad as_of", "GET", "/v1/aggregates/account/acc-b?as_of=yesterday", "", 400, "RFC 3339"},
		{"bad from", "GET", "/v1/aggregates/account/acc-b/events?from=-1", "", 400, "want a version number"},
		{"unknown route", "GET", "/v2/everything", "", 404, "no route for GET /v2/everything"},
		{"wrong method", "DELETE", "/v1/aggregates/account/acc-b", "", 405, "method DELETE not allowed"},
		{"body too large", "POST", "/v1/commands/account/acc-b", `{"type":"Deposit","data":{"amount":1},"command_id":"` + strings.Repeat("y", 2<<20) + `"}`, 413, "larger than"},
	} {
		var out map[string]any
		code := s.do(t, tc.method, tc.path, tc.body, &out)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, code, tc.code, out)
			continue
		}
		if msg, _ := out["error"].(string); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: error %q, want it to contain %q", tc.name, msg, tc.msg)
		}
	}
	// Still serving, state untouched by all of the above.
	var agg accountState
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-b", "", &agg); code != 200 || agg.Version != 1 || agg.State.Balance != 10 {
		t.Fatalf("after bad input: %d %+v", code, agg)
	}
}
