package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/httpapi"
)

// testAuthAndSlowClients: a node given tokens requires one on every route
// but the probes, lets a read-only token read and not write, and cuts off
// a client that sends its headers a byte at a time.
func testAuthAndSlowClients(t *testing.T, b *broker) {
	const (
		rw = "rw-e2e-0123456789abcdef"
		ro = "ro-e2e-0123456789abcdef"
	)
	tokens, err := httpapi.ParseTokens("tokens", strings.NewReader(rw+"\nread-only "+ro+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	const headerTimeout = 500 * time.Millisecond
	s := startNode(t, b, nodeOpts{ns: namespace(), dataDir: t.TempDir(), tokens: tokens, readHeaderTimeout: headerTimeout})

	call := func(method, path, token, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode, resp.Header, out
	}
	open := `{"type":"OpenAccount","data":{"owner":"ada","initial_balance":10}}`

	for _, tc := range []struct{ what, token string }{{"no token", ""}, {"a wrong token", "wrong-0123456789abcdef"}} {
		code, h, out := call("POST", "/v1/commands/account/acc-a", tc.token, open)
		if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || out["error"] == nil {
			t.Fatalf("command with %s: %d %q %v", tc.what, code, h.Get("WWW-Authenticate"), out)
		}
		if code, _, out := call("GET", "/v1/aggregates/account/acc-a", tc.token, ""); code != 401 {
			t.Fatalf("read with %s: %d %v", tc.what, code, out)
		}
	}
	if code, _, out := call("POST", "/v1/commands/account/acc-a", ro, open); code != 403 || !strings.Contains(out["error"].(string), "read-only") {
		t.Fatalf("command with a read-only token: %d %v", code, out)
	}
	if code, _, out := call("POST", "/v1/commands/account/acc-a", rw, open); code != 200 || out["status"] != "accepted" {
		t.Fatalf("command with a read-write token: %d %v", code, out)
	}
	// The view applies the command on its own time.
	eventually(t, 10*time.Second, func() bool {
		code, _, _ := call("GET", "/v1/views/accounts/acc-a", ro, "")
		return code == 200
	}, func() string { return "the accounts view has no row acc-a for a read-only token" })
	for _, path := range []string{"/v1/aggregates/account/acc-a", "/v1/aggregates/account/acc-a/events", "/v1/status", "/v1/projections"} {
		if code, _, out := call("GET", path, ro, ""); code != 200 {
			t.Fatalf("GET %s with a read-only token: %d %v", path, code, out)
		}
	}
	if code, _, out := call("GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("/healthz without a token: %d %v", code, out)
	}
	if code, _, out := call("GET", "/readyz", "", ""); code == 401 {
		t.Fatalf("/readyz without a token: %d %v", code, out)
	}

	// Slowloris: headers a byte every 20ms, never finished.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	go func() {
		req := "GET /v1/status HTTP/1.1\r\nHost: strata\r\nAuthorization: Bearer " + rw + "\r\nX-Slow: " + strings.Repeat("a", 500)
		for i := range len(req) {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(conn)
	var ne net.Error
	if took := time.Since(start); errors.As(err, &ne) && ne.Timeout() || took > headerTimeout+5*time.Second {
		t.Fatalf("a client sending its headers byte by byte still holds its connection after %s", took)
	}
	if strings.Contains(string(answer), " 200 ") {
		t.Fatalf("slow headers were answered: %q", answer)
	}
}
