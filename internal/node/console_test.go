package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/httpapi"
)

// TestConsoleBesideTheAPI: the console's files and the redirect to them
// need no token (they hold no data); every API route still does.
func TestConsoleBesideTheAPI(t *testing.T) {
	tokens, err := httpapi.ParseTokens("tokens", strings.NewReader("read-only ro-0123456789abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := withConsole(httpapi.Handler(httpapi.Config{Views: map[string]httpapi.View{}, Tokens: tokens}))
	for _, tc := range []struct {
		method, path string
		code         int
		location     string
	}{
		{"GET", "/", http.StatusFound, "/console/"},
		{"HEAD", "/", http.StatusFound, "/console/"},
		{"GET", "/console", http.StatusTemporaryRedirect, "/console/"},
		{"GET", "/console/", 200, ""},
		{"GET", "/console/app.js", 200, ""},
		{"GET", "/v1/status", 401, ""},
		{"GET", "/v1/aggregates", 401, ""},
		{"POST", "/", 401, ""},
		{"GET", "/favicon.ico", 401, ""},
		{"GET", "/healthz", 200, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code || rec.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d Location %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Location"), tc.code, tc.location)
		}
	}
}
