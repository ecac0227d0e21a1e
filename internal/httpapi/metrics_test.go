package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/strata-es/strata/internal/metrics"
)

// metricsServer is the API with metrics and nothing behind it.
func metricsServer(t *testing.T, tokens *Tokens, access MetricsAccess) (*httptest.Server, *metrics.Metrics) {
	t.Helper()
	m := metrics.New()
	srv := httptest.NewServer(Handler(Config{
		Views:         map[string]View{},
		Tokens:        tokens,
		Status:        func() any { return map[string]string{"instance": "test"} },
		Metrics:       m,
		MetricsAccess: access,
	}))
	t.Cleanup(srv.Close)
	return srv, m
}

func request(t *testing.T, srv *httptest.Server, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestMetricsAccess: with tokens, /metrics needs one by default (a
// read-only one suffices), none when open, and is not there when off;
// without tokens it is open unless off.
func TestMetricsAccess(t *testing.T) {
	tokens := testTokens(t)
	for _, tc := range []struct {
		name   string
		tokens *Tokens
		access MetricsAccess
		token  string
		code   int
	}{
		{"default, tokens, none given", tokens, "", "", 401},
		{"token, tokens, none given", tokens, MetricsToken, "", 401},
		{"token, tokens, a wrong one", tokens, MetricsToken, "wrong-0123456789abcdef", 401},
		{"token, tokens, read-only", tokens, MetricsToken, roToken, 200},
		{"token, tokens, read-write", tokens, MetricsToken, rwToken, 200},
		{"open, tokens, none given", tokens, MetricsOpen, "", 200},
		{"open, tokens, a wrong one", tokens, MetricsOpen, "wrong-0123456789abcdef", 200},
		{"off, tokens, read-write", tokens, MetricsOff, rwToken, 404},
		{"off, tokens, none given", tokens, MetricsOff, "", 401},
		{"token, no tokens", nil, MetricsToken, "", 200},
		{"off, no tokens", nil, MetricsOff, "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := metricsServer(t, tc.tokens, tc.access)
			if code, _ := request(t, srv, "GET", "/healthz", ""); code != 200 {
				t.Fatalf("GET /healthz: %d", code)
			}
			code, body := request(t, srv, "GET", "/metrics", tc.token)
			if code != tc.code {
				t.Fatalf("GET /metrics: %d, want %d: %.500s", code, tc.code, body)
			}
			if code == 200 && !strings.Contains(body, `strata_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`) {
				t.Fatalf("GET /metrics does not count the /healthz before it: %.500s…", body)
			}
			// Open /metrics opens nothing else.
			if tc.tokens != nil && tc.access == MetricsOpen {
				if code, _ := request(t, srv, "GET", "/v1/status", ""); code != 401 {
					t.Fatalf("GET /v1/status without a token, /metrics open: %d, want 401", code)
				}
			}
		})
	}
	if _, err := ParseMetricsAccess("public"); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("ParseMetricsAccess(public): %v", err)
	}
	if a, err := ParseMetricsAccess(""); err != nil || a != MetricsToken {
		t.Errorf(`ParseMetricsAccess(""): %q %v, want token`, a, err)
	}
}

// TestRequestsAreCounted: every answer counts under the route that matched
// (also when authentication refused it), its method and its code; an
// unknown path or method counts as unmatched; scraped through the handler.
func TestRequestsAreCounted(t *testing.T) {
	srv, m := metricsServer(t, testTokens(t), MetricsOpen)
	for _, r := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/v1/status", "", 401},
		{"GET", "/v1/status", roToken, 200},
		{"POST", "/v1/projections/nope/retry", roToken, 403},
		{"POST", "/v1/projections/nope/retry", rwToken, 404},
		{"GET", "/v1/nothing", rwToken, 404},
		{"POST", "/healthz", rwToken, 405},
		{"BREW", "/healthz", rwToken, 405},
	} {
		if code, body := request(t, srv, r.method, r.path, r.token); code != r.code {
			t.Fatalf("%s %s: %d, want %d: %s", r.method, r.path, code, r.code, body)
		}
	}
	want := `
# HELP strata_http_requests_total HTTP requests answered, by route (the API's pattern, "unmatched" for none), method ("other" for unusual ones) and status code.
# TYPE strata_http_requests_total counter
strata_http_requests_total{code="200",method="GET",route="GET /healthz"} 2
strata_http_requests_total{code="200",method="GET",route="GET /v1/status"} 1
strata_http_requests_total{code="401",method="GET",route="GET /v1/status"} 1
strata_http_requests_total{code="403",method="POST",route="POST /v1/projections/{name}/retry"} 1
strata_http_requests_total{code="404",method="GET",route="unmatched"} 1
strata_http_requests_total{code="404",method="POST",route="POST /v1/projections/{name}/retry"} 1
strata_http_requests_total{code="405",method="POST",route="unmatched"} 1
strata_http_requests_total{code="405",method="other",route="unmatched"} 1
`
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(want), "strata_http_requests_total"); err != nil {
		t.Error(err)
	}
	// The scrape itself is counted once it was answered.
	want += `strata_http_requests_total{code="200",method="GET",route="GET /metrics"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "strata_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry(), "strata_http_request_duration_seconds"); err != nil || n != 7 {
		t.Errorf("%d duration series (%v), want 7: one per route and method", n, err)
	}
}
