package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// answer sends req and returns the status, the content type and the JSON
// body decoded (nil when it is not JSON).
func answer(t *testing.T, req *http.Request) (int, string, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		out = nil
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), out
}

// testHostileHTTP: the hostile requests of issue 8 that testBadHTTPInput
// does not send (invalid UTF-8, deep nesting, wrong types, IDs with every
// kind of forbidden byte, methods and routes, bodies at and over the
// limit, sent whole or chunked) each get the right 4xx and a JSON message,
// and the node serves on, its state untouched.
func testHostileHTTP(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})
	if code, res := s.send(t, "acc-h", "OpenAccount", `{"owner":"hal","initial_balance":10}`); code != 200 {
		t.Fatalf("open: %d %v", code, res)
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObj := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	deposit := `{"type":"Deposit","data":{"amount":1}}`
	// padded is a deposit of 1 of n bytes, most of them spaces.
	padded := func(n int) string {
		start := `{"type":"Deposit","data":{"amount":1`
		return start + strings.Repeat(" ", n-len(start)-2) + "}}"
	}
	post := "/v1/commands/account/"
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		// Invalid UTF-8, anywhere.
		{"invalid UTF-8 in the type", "POST", post + "acc-h", "{\"type\":\"Dep\xc3\x28osit\",\"data\":{\"amount\":1}}", 400, "not valid UTF-8 at byte 12"},
		{"invalid UTF-8 in the data", "POST", post + "acc-h", "{\"type\":\"OpenAccount\",\"data\":{\"owner\":\"\xff\"}}", 400, "not valid UTF-8"},
		{"a lone surrogate in the command ID", "POST", post + "acc-h", "{\"type\":\"Deposit\",\"data\":{\"amount\":1},\"command_id\":\"\xed\xa0\x80\"}", 400, "not valid UTF-8"},
		{"invalid UTF-8 in the ID", "POST", post + "acc%FFh", deposit, 400, "not valid UTF-8"},
		{"invalid UTF-8 in a read's ID", "GET", "/v1/aggregates/account/acc%C3%28", "", 400, "not valid UTF-8"},
		// Deep nesting.
		{"100k nested arrays as data", "POST", post + "acc-h", `{"type":"Deposit","data":` + deep + `}`, 400, "exceeded max depth"},
		{"100k nested objects as the body", "POST", post + "acc-h", deepObj, 400, "exceeded max depth"},
		{"100k nested arrays as a field", "POST", post + "acc-h", `{"type":"Deposit","data":{"amount":` + deep + `}}`, 400, "exceeded max depth"},
		// Wrong types.
		{"type is a number", "POST", post + "acc-h", `{"type":5}`, 400, "Request.type of type string"},
		{"type is null", "POST", post + "acc-h", `{"type":null,"data":{"amount":1}}`, 400, `"type" is required`},
		{"data is an array", "POST", post + "acc-h", `{"type":"Deposit","data":[1]}`, 400, "cannot unmarshal array"},
		{"expected_version is a string", "POST", post + "acc-h", `{"type":"Deposit","data":{"amount":1},"expected_version":"1"}`, 400, "expected_version"},
		{"expected_version is negative", "POST", post + "acc-h", `{"type":"Deposit","data":{"amount":1},"expected_version":-1}`, 400, "expected_version"},
		{"expected_version overflows", "POST", post + "acc-h", `{"type":"Deposit","data":{"amount":1},"expected_version":1e30}`, 400, "expected_version"},
		{"command_id is an object", "POST", post + "acc-h", `{"type":"Deposit","data":{"amount":1},"command_id":{}}`, 400, "command_id"},
		{"amount overflows", "POST", post + "acc-h", `{"type":"Deposit","data":{"amount":9223372036854775808}}`, 400, "cannot unmarshal number 9223372036854775808"},
		{"the body is a string", "POST", post + "acc-h", `"Deposit"`, 400, "body must be a JSON object"},
		{"the body is null", "POST", post + "acc-h", `null`, 400, `"type" is required`},
		{"a brace after the object", "POST", post + "acc-h", deposit + `}`, 400, "after the JSON value"},
		// IDs.
		{"ID with a slash", "POST", post + "a%2Fb", deposit, 400, "contains '/'"},
		{"ID dot-dot", "POST", post + "%2E%2E", deposit, 400, `id ".." is not allowed`},
		{"ID dot", "POST", post + "%2E", deposit, 400, `id "." is not allowed`},
		{"ID with a NUL", "POST", post + "a%00b", deposit, 400, "control character"},
		{"ID with a newline", "POST", post + "a%0Ab", deposit, 400, "control character"},
		{"ID with DEL", "POST", post + "a%7Fb", deposit, 400, "control character"},
		{"ID with a C1 control", "POST", post + "a%C2%85b", deposit, 400, "control character"},
		{"ID of 257 bytes", "POST", post + strings.Repeat("i", 257), deposit, 400, "257 bytes, longer than the limit of 256"},
		{"ID of 256 bytes: another account, which does not exist", "POST", post + strings.Repeat("i", 256), deposit, 422, ""},
		{"empty ID", "POST", post, deposit, 404, "no route"},
		{"empty ID of a read", "GET", "/v1/aggregates/account/", "", 404, "no route"},
		{"a view key with a slash", "GET", "/v1/views/accounts/a%2Fb", "", 400, "contains '/'"},
		// Routes and methods.
		{"PUT a command", "PUT", post + "acc-h", deposit, 405, "method PUT not allowed"},
		{"GET a command", "GET", post + "acc-h", "", 405, "method GET not allowed"},
		{"DELETE an aggregate", "DELETE", "/v1/aggregates/account/acc-h", "", 405, "method DELETE not allowed"},
		{"an invented method", "BREW", "/v1/aggregates/account/acc-h", "", 405, "method BREW not allowed"},
		{"POST a read", "POST", "/v1/aggregates/account/acc-h", deposit, 405, "method POST not allowed"},
		{"a command without an ID", "POST", "/v1/commands/account", deposit, 404, "no route"},
		{"a path too deep", "POST", post + "acc-h/extra", deposit, 404, "no route"},
		{"no version", "GET", "/commands/account/acc-h", "", 404, "no route"},
		// The root redirects to the console (TestConsoleBesideTheAPI);
		// any other path outside /v1 is the API's.
		{"a path outside /v1", "GET", "/index.html", "", 404, "no route"},
		// Bodies at and over the limit.
		{"a body of exactly 1 MiB, most of it spaces", "POST", post + "acc-h", padded(1 << 20), 200, ""},
		{"a body of 1 MiB and 1 byte", "POST", post + "acc-h", padded(1<<20 + 1), 413, "larger than 1048576 bytes"},
		{"a body of 8 MiB", "POST", post + "acc-h", strings.Repeat("x", 8<<20), 413, "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.name, "exactly 1 MiB") && len(tc.body) != 1<<20 {
				t.Fatalf("body of %d bytes", len(tc.body))
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, s.url+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			code, ctype, out := answer(t, req)
			if ctype != "application/json" || out == nil {
				t.Fatalf("status %d, a %q answer that is not JSON", code, ctype)
			}
			msg, _ := out["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.msg) || code >= 400 && msg == "" {
				t.Fatalf("status %d %q, want %d and an error containing %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	// A chunked body (no Content-Length) over the limit is cut off at it.
	pr, pw := io.Pipe()
	go func() {
		chunk := []byte(strings.Repeat(" ", 64<<10))
		_, _ = pw.Write([]byte(`{"type":"Deposit","data":{"amount":1`))
		for i := 0; i < 32; i++ { // 2 MiB
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		_, _ = pw.Write([]byte("}}"))
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", s.url+post+"acc-h", pr)
	if code, _, out := answer(t, req); code != 413 || !strings.Contains(fmt.Sprint(out["error"]), "larger than 1048576") {
		t.Errorf("a chunked body of 2 MiB: %d %v", code, out)
	}
	pr.Close()
	// HEAD of a read route answers like GET, without a body.
	req, _ = http.NewRequest("HEAD", s.url+"/v1/aggregates/account/acc-h", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Still serving; only the one good deposit of 1 MiB applied.
	var agg accountState
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-h", "", &agg); code != 200 || agg.Version != 2 || agg.State.Balance != 11 {
		t.Fatalf("after hostile input: %d %+v, want version 2 and balance 11", code, agg)
	}
}

// testConnectionBurst: 500 connections opened at once and dropped, in
// every state a client can leave one (connected, mid-headers, mid-body,
// a whole request whose answer is never read), do not stop the node from
// answering the next client, and each is closed.
func testConnectionBurst(t *testing.T, b *broker) {
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir()})
	addr := strings.TrimPrefix(s.url, "http://")
	burst(t, addr, 500)
	if code, res := s.send(t, "acc-burst", "OpenAccount", `{"owner":"bo","initial_balance":1}`); code != 200 {
		t.Fatalf("a command after the burst: %d %v", code, res)
	}
	var h map[string]any
	if code := s.do(t, "GET", "/healthz", "", &h); code != 200 {
		t.Fatalf("healthz after the burst: %d", code)
	}
}

// burst opens n connections to addr at once, each left in one of four
// states, then drops them all.
func burst(t *testing.T, addr string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	conns := make(chan net.Conn, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
				return
			}
			switch i % 4 {
			case 1: // mid-headers
				_, _ = c.Write([]byte("POST /v1/commands/account/acc-x HTTP/1.1\r\nHost: strata\r\nContent-Le"))
			case 2: // mid-body
				_, _ = c.Write([]byte("POST /v1/commands/account/acc-x HTTP/1.1\r\nHost: strata\r\nContent-Length: 1000\r\n\r\n{\"type\":"))
			case 3: // a whole request, the answer never read
				_, _ = c.Write([]byte("GET /v1/status HTTP/1.1\r\nHost: strata\r\n\r\n"))
			}
			conns <- c
		}()
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		_ = c.Close()
	}
}
