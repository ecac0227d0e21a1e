package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const defaultHTTP = "http://127.0.0.1:8080"

// apiClient reaches a running Strata's HTTP API, as a client command's
// flags say: where, and with which token.
type apiClient struct {
	base      string
	tokenFile string
}

// apiFlags adds --http and --token-file to a client command.
func apiFlags(fs *flag.FlagSet) *apiClient {
	a := &apiClient{}
	fs.StringVar(&a.base, "http", envOr("STRATA_HTTP", defaultHTTP), "URL of a running Strata's HTTP API (env STRATA_HTTP)")
	fs.StringVar(&a.tokenFile, "token-file", "", "file holding the bearer token of a Strata that requires one (else env STRATA_TOKEN)")
	return a
}

// token returns the bearer token to send, and where it comes from: the
// --token-file, else STRATA_TOKEN, else none. The file holds the token
// alone, or one line of a server's token file ("read-only TOKEN");
// blank lines and # comments are skipped. Errors never show the token.
func (a *apiClient) token() (tok, from string, err error) {
	if a.tokenFile == "" {
		return strings.TrimSpace(os.Getenv("STRATA_TOKEN")), "STRATA_TOKEN", nil
	}
	from = "--token-file " + a.tokenFile
	b, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return "", from, fmt.Errorf("--token-file: %w", err)
	}
	var lines [][]string
	for _, l := range strings.Split(string(b), "\n") {
		l, _, _ = strings.Cut(l, "#")
		if f := strings.Fields(l); len(f) > 0 {
			lines = append(lines, f)
		}
	}
	switch {
	case len(lines) == 0:
		return "", from, fmt.Errorf("--token-file %s: holds no token", a.tokenFile)
	case len(lines) > 1:
		return "", from, fmt.Errorf("--token-file %s: holds %d lines; want the one token to send", a.tokenFile, len(lines))
	}
	f := lines[0]
	if len(f) == 2 && (f[0] == "read-only" || f[0] == "read-write") {
		f = f[1:]
	}
	if len(f) != 1 {
		return "", from, fmt.Errorf("--token-file %s: want a token, without spaces", a.tokenFile)
	}
	return f[0], from, nil
}

// request builds a request to path, with the token when there is one.
func (a *apiClient) request(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, string, error) {
	base := a.base
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + path)
	if err != nil {
		return nil, "", fmt.Errorf("--http %q: %v", a.base, err)
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, "", err
	}
	tok, from, err := a.token()
	if err != nil {
		return nil, "", err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else {
		from = ""
	}
	return req, from, nil
}

// authHint tells, after a 401 or 403, how to pass a token; from is where
// the token sent came from, empty when none was.
func authHint(status int, from string) string {
	switch {
	case status == http.StatusForbidden:
		return fmt.Sprintf("strata: the token from %s is read-only; this command needs a read-write token", from)
	case status == http.StatusUnauthorized && from == "":
		return "strata: this Strata requires a token: pass --token-file FILE (a file holding the token) or set STRATA_TOKEN"
	case status == http.StatusUnauthorized:
		return fmt.Sprintf("strata: the token from %s was refused: it is not one of the server's --auth-token-file", from)
	}
	return ""
}

// call performs one request and prints the JSON answer, indented. It maps
// HTTP statuses to exit codes.
func (a *apiClient) call(ctx context.Context, method, path string, query url.Values, body any, stdout, stderr io.Writer) int {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintf(stderr, "strata: %v\n", err)
			return exitFailure
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, from, err := a.request(ctx, method, path, query, rd)
	if err != nil {
		fmt.Fprintf(stderr, "strata: %v\n", err)
		return exitUsage
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "strata: %v (is Strata running? start it with 'make run', or pass --http)\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		fmt.Fprintf(stderr, "strata: reading the answer: %v\n", err)
		return exitFailure
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		out.Reset()
		out.Write(raw)
	}
	w := stdout
	if resp.StatusCode >= 300 {
		w = stderr
	}
	fmt.Fprintln(w, strings.TrimRight(out.String(), "\n"))
	if hint := authHint(resp.StatusCode, from); hint != "" {
		fmt.Fprintln(stderr, hint)
	}
	switch {
	case resp.StatusCode < 300:
		return exitOK
	case resp.StatusCode == http.StatusNotFound:
		return exitNotFound
	case resp.StatusCode == http.StatusBadRequest:
		return exitUsage
	}
	return exitFailure
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	api := apiFlags(fs)
	expected := fs.String("expected-version", "", "fail with a conflict unless the aggregate is at this version")
	commandID := fs.String("command-id", "", "idempotency key: resending the same ID returns the first result")
	pos, err := parse(fs, args, stderr, "AGGREGATE ID TYPE [DATA-JSON] [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) < 3 || len(pos) > 4 {
		return usageError(fs, stderr, "want AGGREGATE ID TYPE [DATA-JSON], got %d arguments", len(pos))
	}
	body := map[string]any{"type": pos[2]}
	if len(pos) == 4 {
		if !json.Valid([]byte(pos[3])) {
			return usageError(fs, stderr, "DATA-JSON %q is not valid JSON (quote it for the shell: '{\"amount\":5}')", pos[3])
		}
		body["data"] = json.RawMessage(pos[3])
	}
	if *expected != "" {
		v, err := strconv.ParseUint(*expected, 10, 64)
		if err != nil {
			return usageError(fs, stderr, "--expected-version %q: want a version number", *expected)
		}
		body["expected_version"] = v
	}
	if *commandID != "" {
		body["command_id"] = *commandID
	}
	var out bytes.Buffer
	code := api.call(ctx, http.MethodPost, "/v1/commands/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1]), nil, body, io.MultiWriter(stdout, &out), stderr)
	if code == exitOK {
		rememberPosition(out.Bytes())
	}
	return code
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	api := apiFlags(fs)
	version := fs.Uint64("version", 0, "time travel: the state at this version")
	asOf := fs.String("as-of", "", "time travel: the state at this RFC 3339 time")
	pos, err := parse(fs, args, stderr, "AGGREGATE ID [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 2 {
		return usageError(fs, stderr, "want AGGREGATE ID, got %d arguments", len(pos))
	}
	q := url.Values{}
	if *version > 0 {
		q.Set("version", strconv.FormatUint(*version, 10))
	}
	if *asOf != "" {
		if _, err := time.Parse(time.RFC3339Nano, *asOf); err != nil {
			return usageError(fs, stderr, "--as-of %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", *asOf)
		}
		q.Set("as_of", *asOf)
	}
	return api.call(ctx, http.MethodGet, "/v1/aggregates/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1]), q, nil, stdout, stderr)
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	api := apiFlags(fs)
	from := fs.Uint64("from", 1, "first version to show")
	pos, err := parse(fs, args, stderr, "AGGREGATE ID [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 2 {
		return usageError(fs, stderr, "want AGGREGATE ID, got %d arguments", len(pos))
	}
	q := url.Values{"from": {strconv.FormatUint(*from, 10)}}
	return api.call(ctx, http.MethodGet, "/v1/aggregates/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1])+"/events", q, nil, stdout, stderr)
}

func runView(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("view", flag.ContinueOnError)
	api := apiFlags(fs)
	position := fs.String("position", "", "wait until the view has applied this position token (from a command result)")
	afterLast := fs.Bool("after-last", false, "wait until the view has applied the last command sent with 'strata send' from this machine")
	index := fs.String("index", "", "query: the secondary index to use (e.g. customer_id)")
	eq := fs.String("eq", "", "query: the index value to match")
	order := fs.String("order", "asc", "query: asc or desc")
	limit := fs.Int("limit", 100, "query: rows per page (1 to 1000)")
	cursor := fs.String("cursor", "", "query: the next value of the previous page")
	pos, err := parse(fs, args, stderr, "VIEW [KEY] [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError(fs, stderr, "want VIEW KEY for a row, or VIEW [--index I --eq V] for a query; got %d arguments", len(pos))
	}
	if *limit < 1 || *limit > 1000 {
		return usageError(fs, stderr, "--limit %d: want 1 to 1000", *limit)
	}
	if *order != "asc" && *order != "desc" {
		return usageError(fs, stderr, "--order %q: want asc or desc", *order)
	}
	if *index == "" && *eq != "" {
		return usageError(fs, stderr, "--eq needs --index (the index whose value it matches)")
	}
	q := url.Values{}
	if *afterLast {
		b, err := os.ReadFile(lastPositionFile())
		if err != nil {
			return usageError(fs, stderr, "--after-last: no command sent from this machine yet (%v)", err)
		}
		*position = strings.TrimSpace(string(b))
	}
	if *position != "" {
		q.Set("position", *position)
	}
	if len(pos) == 2 {
		return api.call(ctx, http.MethodGet, "/v1/views/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1]), q, nil, stdout, stderr)
	}
	if *index != "" {
		q.Set("index", *index)
		q.Set("eq", *eq)
	}
	q.Set("order", *order)
	q.Set("limit", strconv.Itoa(*limit))
	if *cursor != "" {
		q.Set("cursor", *cursor)
	}
	return api.call(ctx, http.MethodGet, "/v1/views/"+url.PathEscape(pos[0]), q, nil, stdout, stderr)
}

// lastPositionFile is where 'strata send' keeps the position of the last
// accepted command, for 'strata view --after-last'.
func lastPositionFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "strata", "last-position")
}

func rememberPosition(out []byte) {
	var res struct{ Position string }
	if json.Unmarshal(out, &res) != nil || res.Position == "" {
		return
	}
	p := lastPositionFile()
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_ = os.WriteFile(p, []byte(res.Position+"\n"), 0o644)
	}
}

func runProjection(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "status" {
		return simpleGet(ctx, "projection status", "/v1/projections", args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "retry" {
		fs := flag.NewFlagSet("projection retry", flag.ContinueOnError)
		api := apiFlags(fs)
		pos, err := parse(fs, args[1:], stderr, "NAME [--http URL]")
		if err != nil {
			return flagExit(err)
		}
		if len(pos) != 1 {
			return usageError(fs, stderr, "want the projection's NAME")
		}
		return api.call(ctx, http.MethodPost, "/v1/projections/"+url.PathEscape(pos[0])+"/retry", nil, nil, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "rebuild" {
		return rebuildProjection(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "parked" {
		return parkedEvents(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, `Usage:
  strata projection status [--http URL]        per projection and partition: applied offset, end, lag, rate, state, parked aggregates
  strata projection retry NAME [--http URL]    replay the parked events of a projection, after a fix
  strata projection rebuild NAME [--http URL]  rebuild a view from offset 0 beside the live one, then swap it in
  strata projection parked NAME [--limit N]    the events a projection set aside, with why, a page at a time`)
	return exitUsage
}

// rebuildProjection starts a rebuild and follows it to the swap, printing
// progress and ETA.
func rebuildProjection(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("projection rebuild", flag.ContinueOnError)
	api := apiFlags(fs)
	pos, err := parse(fs, args, stderr, "NAME [--http URL]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want the projection's NAME")
	}
	if code := api.call(ctx, http.MethodPost, "/v1/projections/"+url.PathEscape(pos[0])+"/rebuild", nil, nil, io.Discard, stderr); code != exitOK {
		return code
	}
	for {
		var st struct {
			Projections []struct {
				Name       string
				Generation int
				Rebuild    *struct {
					Generation     int
					Applied, Total int64
					ETA            string
					Done           bool
					Error          string
				}
			}
		}
		req, from, err := api.request(ctx, http.MethodGet, "/v1/projections", nil, nil)
		if err != nil {
			fmt.Fprintf(stderr, "strata: %v\n", err)
			return exitUsage
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintf(stderr, "strata: %v\n", err)
			return exitFailure
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			fmt.Fprintf(stderr, "strata: following the rebuild: %s\n", resp.Status)
			if hint := authHint(resp.StatusCode, from); hint != "" {
				fmt.Fprintln(stderr, hint)
			}
			return exitFailure
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			fmt.Fprintf(stderr, "strata: %v\n", err)
			return exitFailure
		}
		for _, p := range st.Projections {
			if p.Name != pos[0] || p.Rebuild == nil {
				continue
			}
			rb := p.Rebuild
			switch {
			case rb.Error != "":
				fmt.Fprintf(stderr, "rebuild of %s failed: %s\n", p.Name, rb.Error)
				return exitFailure
			case rb.Done && p.Generation == rb.Generation:
				fmt.Fprintf(stdout, "rebuilt %s: generation %d swapped in (%d offsets)\n", p.Name, rb.Generation, rb.Total)
				return exitOK
			default:
				fmt.Fprintf(stderr, "rebuilding %s: %d of %d offsets, ETA %s\n", p.Name, rb.Applied, rb.Total, rb.ETA)
			}
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return exitFailure
		}
	}
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return simpleGet(ctx, "status", "/v1/status", args, stdout, stderr)
}

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return simpleGet(ctx, "health", "/healthz", args, stdout, stderr)
}

func simpleGet(ctx context.Context, name, path string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	api := apiFlags(fs)
	pos, err := parse(fs, args, stderr, "[flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	return api.call(ctx, http.MethodGet, path, nil, nil, stdout, stderr)
}
