package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Role is what a bearer token may do.
type Role int

const (
	// NoRole is no access: no token, or an unknown one.
	NoRole Role = iota
	// ReadOnly may use the GET routes: aggregates, events, views, status,
	// the projections' list.
	ReadOnly
	// ReadWrite may use every route: commands, projection retries and
	// rebuilds too.
	ReadWrite
)

func (r Role) String() string {
	switch r {
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	}
	return "none"
}

// MinTokenLen is the shortest token a token file may hold: a token is a
// password nobody types, so there is no reason for a guessable one.
const MinTokenLen = 16

// Tokens are the bearer tokens the API accepts. Only their SHA-256 digests
// are kept, so a memory dump or a stray %v never shows a token. The zero
// value (and nil) holds none: authentication is off. Safe for concurrent
// use once built.
type Tokens struct {
	digests [][sha256.Size]byte
	roles   []Role
}

// Len is how many tokens there are; 0 means authentication is off.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.digests)
}

// Count is how many tokens have the role.
func (t *Tokens) Count(r Role) int {
	n := 0
	for i := range t.Len() {
		if t.roles[i] == r {
			n++
		}
	}
	return n
}

// Role returns the role of a presented token: NoRole when it is none of
// them. It takes the same time whichever token matches, or none: both
// sides are hashed first, so every comparison is between 32-byte values
// (no length leak), and every token is compared, without stopping at a
// match.
func (t *Tokens) Role(token string) Role {
	d := sha256.Sum256([]byte(token))
	role := int(NoRole)
	for i := range t.Len() {
		eq := subtle.ConstantTimeCompare(d[:], t.digests[i][:])
		role = subtle.ConstantTimeSelect(eq, int(t.roles[i]), role)
	}
	return Role(role)
}

// LoadTokens reads a token file (see ParseTokens). A missing file is an
// error: a path that was given must be used.
func LoadTokens(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth token file: %w", err)
	}
	return ParseTokens(path, bytes.NewReader(b))
}

// ParseTokens reads a token file named name: one token per line, as TOKEN
// (read-write), "read-write TOKEN" or "read-only TOKEN"; blank lines and
// everything from a # on are ignored (# is never part of a token). Tokens
// are RFC 6750 bearer tokens (letters, digits, -._~+/ then any =) of
// MinTokenLen characters at least. An error names the file and the line,
// never the token.
func ParseTokens(name string, r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{} // digest → line
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<10)
	var problems []error
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Errorf("auth token file %s, line %d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		role := ReadWrite
		switch {
		case len(f) == 0:
			continue
		case len(f) == 2 && f[0] == "read-only":
			role = ReadOnly
		case len(f) == 2 && f[0] == "read-write":
		case len(f) == 1:
		default:
			// Do not say which field is wrong: any of them may be a
			// token.
			bad(n, "want TOKEN, 'read-only TOKEN' or 'read-write TOKEN' (%d fields found)", len(f))
			continue
		}
		tok := f[len(f)-1]
		if !validToken(tok) {
			bad(n, "a token must be letters, digits and -._~+/, then any = (as in 'openssl rand -base64 32')")
			continue
		}
		if len(tok) < MinTokenLen {
			bad(n, "token shorter than %d characters (make one with 'openssl rand -hex 32')", MinTokenLen)
			continue
		}
		d := sha256.Sum256([]byte(tok))
		if first, ok := seen[d]; ok {
			bad(n, "the same token as line %d", first)
			continue
		}
		seen[d] = n
		t.digests = append(t.digests, d)
		t.roles = append(t.roles, role)
	}
	if err := sc.Err(); err != nil {
		// bufio.ErrTooLong says nothing of the content.
		return nil, fmt.Errorf("auth token file %s: %w", name, err)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return t, nil
}

// validToken reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validToken(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, c := range []byte(body) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// authenticate requires a bearer token on every route but the open ones:
// orchestrators' probes (/healthz, /readyz), which cannot be given one and
// reveal nothing, and /metrics when MetricsOpen says so.
type authenticate struct {
	tokens *Tokens
	open   map[string]bool // by path
	next   http.Handler
}

func (a authenticate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.open[r.URL.Path] {
		a.next.ServeHTTP(w, r)
		return
	}
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
		writeError(w, http.StatusUnauthorized, "authentication required: send 'Authorization: Bearer TOKEN' (strata CLI: --token-file FILE or STRATA_TOKEN)")
		return
	}
	switch a.tokens.Role(tok) {
	case ReadWrite:
	case ReadOnly:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="insufficient_scope"`)
			writeError(w, http.StatusForbidden, fmt.Sprintf("a read-only token may not %s: it needs a read-write token", r.Method))
			return
		}
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid token")
		return
	}
	a.next.ServeHTTP(w, r)
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header; the
// scheme is case-insensitive (RFC 9110 11.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
