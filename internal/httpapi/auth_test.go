package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	rwToken = "rw-0123456789abcdef"
	roToken = "ro-0123456789abcdef"
)

func testTokens(t *testing.T) *Tokens {
	t.Helper()
	tokens, err := ParseTokens("tokens", strings.NewReader("# operators\n"+rwToken+"\n\n  read-only "+roToken+"  # dashboards\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// authServer is the API with tokens and nothing behind it: the routes it
// reaches need no Kafka or Pebble.
func authServer(t *testing.T, tokens *Tokens) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(Config{
		Views:  map[string]View{},
		Tokens: tokens,
		Status: func() any { return map[string]string{"instance": "test"} },
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAuthenticate(t *testing.T) {
	srv := authServer(t, testTokens(t))
	for _, tc := range []struct {
		name, method, path, auth string
		code                     int
		challenge                string // the WWW-Authenticate header, if any
	}{
		{"no token", "GET", "/v1/status", "", 401, `Bearer realm="strata"`},
		{"no token, POST", "POST", "/v1/projections/orders/retry", "", 401, `Bearer realm="strata"`},
		{"no token, unknown route", "GET", "/v1/nothing", "", 401, `Bearer realm="strata"`},
		{"other scheme", "GET", "/v1/status", "Basic " + rwToken, 401, `Bearer realm="strata"`},
		{"empty bearer", "GET", "/v1/status", "Bearer ", 401, `Bearer realm="strata"`},
		{"wrong token", "GET", "/v1/status", "Bearer wrong-0123456789abcdef", 401, `Bearer realm="strata", error="invalid_token"`},
		{"a prefix of a token", "GET", "/v1/status", "Bearer " + rwToken[:len(rwToken)-1], 401, `Bearer realm="strata", error="invalid_token"`},
		{"a token and more", "GET", "/v1/status", "Bearer " + rwToken + "x", 401, `Bearer realm="strata", error="invalid_token"`},
		{"tokens are case-sensitive", "GET", "/v1/status", "Bearer " + strings.ToUpper(rwToken), 401, `Bearer realm="strata", error="invalid_token"`},
		{"read-write GET", "GET", "/v1/status", "Bearer " + rwToken, 200, ""},
		{"scheme is case-insensitive", "GET", "/v1/projections", "bearer " + rwToken, 200, ""},
		// 404: past authentication, to the handler (no such view).
		{"read-write POST", "POST", "/v1/projections/nope/retry", "Bearer " + rwToken, 404, ""},
		{"read-only GET", "GET", "/v1/projections", "Bearer " + roToken, 200, ""},
		{"read-only GET of a view", "GET", "/v1/views/nope", "Bearer " + roToken, 404, ""},
		{"read-only POST", "POST", "/v1/commands/account/acc-1", "Bearer " + roToken, 403, `Bearer realm="strata", error="insufficient_scope"`},
		{"read-only rebuild", "POST", "/v1/projections/orders/rebuild", "Bearer " + roToken, 403, `Bearer realm="strata", error="insufficient_scope"`},
		{"healthz open", "GET", "/healthz", "", 200, ""},
		{"readyz open", "GET", "/readyz", "", 200, ""},
		{"healthz open to a wrong token", "GET", "/healthz", "Bearer wrong", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"type":"Deposit"}`))
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%d: the answer is not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.code, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if tc.code >= 400 && body["error"] == nil {
				t.Errorf("no JSON error: %v", body)
			}
			for _, tok := range []string{rwToken, roToken} {
				if strings.Contains(resp.Header.Get("WWW-Authenticate")+fmtVal(body), tok) {
					t.Errorf("the answer echoes a token: %v", body)
				}
			}
		})
	}
}

func fmtVal(v map[string]any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAuthOff: without tokens (nil, or a file with none) every route is
// open.
func TestAuthOff(t *testing.T) {
	empty, err := ParseTokens("empty", strings.NewReader("# nobody yet\n\n"))
	if err != nil || empty.Len() != 0 {
		t.Fatalf("a file of comments: %d tokens, %v", empty.Len(), err)
	}
	for _, tokens := range []*Tokens{nil, empty} {
		srv := authServer(t, tokens)
		resp, err := srv.Client().Get(srv.URL + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("no tokens: status %d", resp.StatusCode)
		}
	}
}

func TestParseTokens(t *testing.T) {
	tokens := testTokens(t)
	if tokens.Len() != 2 || tokens.Count(ReadWrite) != 1 || tokens.Count(ReadOnly) != 1 {
		t.Fatalf("%d tokens, %d read-write, %d read-only", tokens.Len(), tokens.Count(ReadWrite), tokens.Count(ReadOnly))
	}
	for tok, want := range map[string]Role{rwToken: ReadWrite, roToken: ReadOnly, "": NoRole, "read-only": NoRole, "read-only " + roToken: NoRole} {
		if got := tokens.Role(tok); got != want {
			t.Errorf("Role(%q) = %s, want %s", tok, got, want)
		}
	}
	tokens, err := ParseTokens("f", strings.NewReader("read-write abcdefghijklmnop0123==\nOpenSSL+base64/token.0123~_-\n"))
	if err != nil || tokens.Count(ReadWrite) != 2 {
		t.Fatalf("explicit read-write and base64 characters: %v", err)
	}
	if tokens, err = ParseTokens("none", strings.NewReader("")); err != nil || tokens.Len() != 0 {
		t.Fatalf("empty file: %v", err)
	}
}

// TestParseTokensErrors: each problem names the file and its line, all are
// reported at once, and none shows a token (or what may be one).
func TestParseTokensErrors(t *testing.T) {
	secrets := []string{"s3cret-part-one-xyz", "s3cret-part-two-xyz", "sh0rt", "s3cret\"quoted-abcdefgh", "s3cret-dup-0123456789", "read-only-typo-0123456", "s3cret-typo-0123456789"}
	file := strings.Join([]string{
		"# a comment",
		rwToken,
		"s3cret-part-one-xyz s3cret-part-two-xyz",       // line 3: a token with a space, or two tokens
		"read-only sh0rt",                               // line 4: too short
		"s3cret\"quoted-abcdefgh",                       // line 5: a character a header cannot carry
		"s3cret-dup-0123456789",                         // line 6
		"read-only s3cret-dup-0123456789",               // line 7: the same token again
		"read-only-typo-0123456 s3cret-typo-0123456789", // line 8: a misspelt role
		"read-only", // line 9: a role is not a token: too short
	}, "\n")
	_, err := ParseTokens("/etc/strata/tokens", strings.NewReader(file))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"/etc/strata/tokens, line 3: want TOKEN",
		"/etc/strata/tokens, line 4: token shorter than 16",
		"/etc/strata/tokens, line 5: a token must be letters",
		"/etc/strata/tokens, line 7: the same token as line 6",
		"/etc/strata/tokens, line 8: want TOKEN",
		"/etc/strata/tokens, line 9: token shorter",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, s := range append(secrets, rwToken) {
		if strings.Contains(msg, s) {
			t.Errorf("error shows %q:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, "line 2") || strings.Contains(msg, "line 6:") {
		t.Errorf("error blames a good line:\n%s", msg)
	}
	if _, err := ParseTokens("long", strings.NewReader(strings.Repeat("x", 100<<10))); err == nil || strings.Contains(err.Error(), "xxxx") {
		t.Errorf("an overlong line: %v", err)
	}
	if _, err := LoadTokens("/nonexistent/tokens"); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokens") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseTokens: a token file of any content is read or refused, never
// panics; a refusal names the file and line of each problem and never
// shows what may be a secret (any run of 16 or more non-space bytes of
// the file); a file that is read gives each line's token its role.
func FuzzParseTokens(f *testing.F) {
	f.Add("# operators\n" + rwToken + "\n\n  read-only " + roToken + "  # dashboards\n")
	f.Add("read-write abcdefghijklmnop0123==\r\nOpenSSL+base64/token.0123~_-\n")
	f.Add("s3cret-part-one-xyz s3cret-part-two-xyz\nread-only sh0rt\ns3cret\"quoted-abcdefgh\n")
	f.Add("tok-0123456789abcdef\nread-only tok-0123456789abcdef\n")
	f.Add("read-only\n=================\n#\x00\xff\n")
	f.Fuzz(func(t *testing.T, file string) {
		tokens, err := ParseTokens("tokens", strings.NewReader(file))
		if err != nil {
			msg := err.Error()
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, "auth token file tokens") {
					t.Fatalf("a problem that does not name the file: %q", line)
				}
			}
			for _, field := range strings.Fields(file) {
				if len(field) >= MinTokenLen && strings.Contains(msg, field) {
					t.Fatalf("the error shows %q:\n%s", field, msg)
				}
			}
			return
		}
		// Read: every line that holds a token gave it its role.
		n := 0
		for _, line := range strings.Split(file, "\n") {
			line, _, _ = strings.Cut(strings.TrimSuffix(line, "\r"), "#")
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			n++
			want := ReadWrite
			if len(fields) == 2 && fields[0] == "read-only" {
				want = ReadOnly
			}
			tok := fields[len(fields)-1]
			if got := tokens.Role(tok); got != want || !validToken(tok) || len(tok) < MinTokenLen {
				t.Fatalf("token %q of line %q: role %s, want %s", tok, line, got, want)
			}
		}
		if tokens.Len() != n || tokens.Count(ReadOnly)+tokens.Count(ReadWrite) != n {
			t.Fatalf("%d tokens (%d read-only, %d read-write) from %d lines", tokens.Len(), tokens.Count(ReadOnly), tokens.Count(ReadWrite), n)
		}
		if tokens.Role("") != NoRole || tokens.Role("not a token: it has spaces") != NoRole {
			t.Fatal("a role for what cannot be a token")
		}
	})
}
