package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/devbroker"
	"github.com/strata-es/strata/internal/httpapi"
)

// startDev runs 'strata dev' in process, with extra flags, and returns the
// URL it prints.
func startDev(t *testing.T, dataDir string, flags ...string) (url string, stop func()) {
	t.Helper()
	url, stop, out := startStrata(t, append([]string{"dev", "--data", dataDir, "--kafka-port", "0", "--http", "127.0.0.1:0", "--log-level", "warn"}, flags...)...)
	if !strings.Contains(out, "embedded Kafka broker at 127.0.0.1:") {
		t.Errorf("strata dev did not print the broker address first: %q", out)
	}
	return url, stop
}

// startStrata runs strata with args in process until it prints its HTTP
// URL, and returns the URL, a stop function and what it printed before.
func startStrata(t *testing.T, args ...string) (url string, stop func(), printed string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		code = run(ctx, args, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// stop is Ctrl-C. It is a cleanup from the start, so that strata
	// stops before the cleanups registered earlier (its broker, its data
	// directory) run, however the test ends.
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			go func() {
				for range lines {
				}
			}()
			select {
			case <-exited:
				if code != 0 && url != "" {
					t.Errorf("strata %v exited with %d after Ctrl-C", args, code)
				}
			case <-time.After(30 * time.Second):
				var dump strings.Builder
				_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
				t.Errorf("strata %v did not stop in 30s; its goroutines:\n%s", args, dump.String())
			}
		})
	}
	t.Cleanup(stop)
	timeout := time.After(60 * time.Second)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				<-exited
				t.Fatalf("strata %v exited with %d before serving", args, code)
			}
			printed += l + "\n"
			if i := strings.Index(l, "HTTP API at "); i >= 0 {
				url = strings.TrimSuffix(strings.Fields(l[i+len("HTTP API at "):])[0], ",")
			}
		case <-timeout:
			t.Fatalf("strata %v did not print its HTTP URL in 60s", args)
		}
	}
	return url, stop, printed
}

// TestServeWithConfigFile: serve reads brokers and settings from a YAML
// file; flags given on the command line override it.
func TestServeWithConfigFile(t *testing.T) {
	c, addr, err := devbroker.Start(devbroker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // after strata stops: startStrata's cleanup runs first
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strata.yaml")
	yaml := fmt.Sprintf("brokers: [%s]\nnamespace: fromfile\npartitions: 3\ndata: %s\nhttp: 127.0.0.1:1\nlog: {level: warn}\n", addr, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _, out := startStrata(t, "serve", "--config", cfgPath, "--http", "127.0.0.1:0")
	if !strings.Contains(out, "brokers "+addr) {
		t.Errorf("serve did not report its brokers: %q", out)
	}
	if code, out, errs := cli(t, "send", "account", "acc-s", "OpenAccount", `{"owner":"sy","initial_balance":1}`, "--http", url); code != 0 {
		t.Fatalf("send: %d %s %s", code, out, errs)
	}
	if td := topicDetail(t, addr, "fromfile.account.events"); len(td.Partitions) != 3 {
		t.Fatalf("the file's namespace and partitions were not used: %d partitions", len(td.Partitions))
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "instance-id")); err != nil {
		t.Fatalf("the file's data directory was not used: %v", err)
	}
	code, _, errs := cli(t, "serve", "--config", filepath.Join(dir, "missing.yaml"))
	if code != exitUsage || !strings.Contains(errs, "missing.yaml") {
		t.Fatalf("missing config: %d %s", code, errs)
	}
}

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDevAndCLI(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // where send keeps the last position
	dir := t.TempDir()
	url, stop := startDev(t, dir)
	if code, out, errs := cli(t, "send", "account", "acc-1", "OpenAccount", `{"owner":"ada","initial_balance":1000}`, "--http", url); code != 0 || !strings.Contains(out, `"version": 1`) {
		t.Fatalf("send open: %d %s %s", code, out, errs)
	}
	code, out, _ := cli(t, "send", "--http", url, "account", "acc-1", "Deposit", `{"amount":5}`)
	if code != 0 {
		t.Fatalf("send deposit: %d %s", code, out)
	}
	var res struct{ Position string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Position == "" {
		t.Fatalf("send output is not the result JSON: %v\n%s", err, out)
	}
	if code, _, errs := cli(t, "send", "account", "acc-1", "Withdraw", `{"amount":5000}`, "--http", url); code != exitFailure || !strings.Contains(errs, "insufficient funds") {
		t.Fatalf("overdraft: %d %s", code, errs)
	}
	if code, out, _ := cli(t, "get", "account", "acc-1", "--http", url); code != 0 || !strings.Contains(out, `"balance": 1005`) {
		t.Fatalf("get: %d %s", code, out)
	}
	if code, out, _ := cli(t, "get", "account", "acc-1", "--version", "1", "--http", url); code != 0 || !strings.Contains(out, `"balance": 1000`) {
		t.Fatalf("get --version 1: %d %s", code, out)
	}
	if code, out, _ := cli(t, "events", "account", "acc-1", "--http", url); code != 0 || strings.Index(out, "AccountOpened") > strings.Index(out, "MoneyDeposited") || !strings.Contains(out, "MoneyDeposited") {
		t.Fatalf("events: %d %s", code, out)
	}
	if code, out, _ := cli(t, "view", "accounts", "acc-1", "--position", res.Position, "--http", url); code != 0 || !strings.Contains(out, `"balance": 1005`) {
		t.Fatalf("view: %d %s", code, out)
	}
	if code, _, errs := cli(t, "get", "account", "nobody", "--http", url); code != exitNotFound || !strings.Contains(errs, "does not exist") {
		t.Fatalf("get missing: %d %s", code, errs)
	}
	// Orders, queried by customer newest first, read after the last send.
	for _, o := range []string{"o-1", "o-2"} {
		if code, out, errs := cli(t, "send", "order", o, "CreateOrder", `{"customer_id":"c-1","items":[{"sku":"A","qty":1,"unit_price":5}]}`, "--http", url); code != 0 {
			t.Fatalf("create %s: %s %s", o, out, errs)
		}
		time.Sleep(3 * time.Millisecond)
	}
	code, out, errs := cli(t, "view", "orders", "--index", "customer_id", "--eq", "c-1", "--order", "desc", "--after-last", "--http", url)
	if code != 0 || strings.Index(out, `"o-2"`) < 0 || strings.Index(out, `"o-2"`) > strings.Index(out, `"o-1"`) {
		t.Fatalf("view orders by customer, newest first: %d %s %s", code, out, errs)
	}
	if code, out, _ := cli(t, "projection", "status", "--http", url); code != 0 || !strings.Contains(out, `"name": "orders"`) || !strings.Contains(out, `"lag"`) {
		t.Fatalf("projection status: %d %s", code, out)
	}
	// A blue/green rebuild of the orders view, followed to the swap.
	if code, out, errs := cli(t, "projection", "rebuild", "orders", "--http", url); code != 0 || !strings.Contains(out, "generation 1 swapped in") {
		t.Fatalf("rebuild: %d %s %s", code, out, errs)
	}
	code, out, errs = cli(t, "view", "orders", "--index", "customer_id", "--eq", "c-1", "--order", "desc", "--http", url)
	if code != 0 || strings.Index(out, `"o-2"`) < 0 || strings.Index(out, `"o-2"`) > strings.Index(out, `"o-1"`) {
		t.Fatalf("the rebuilt view: %d %s %s", code, out, errs)
	}

	// Data survives a restart of 'strata dev', broker included; this time
	// the API requires tokens.
	stop()
	const rwToken, roToken = "rw-cli-0123456789abcdef", "ro-cli-0123456789abcdef"
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# test tokens\n"+rwToken+"\nread-only "+roToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	roFile := filepath.Join(t.TempDir(), "ro-token")
	if err := os.WriteFile(roFile, []byte(roToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _ = startDev(t, dir, "--auth-token-file", tokens)
	t.Setenv("STRATA_TOKEN", "")
	if code, out, errs := cli(t, "get", "account", "acc-1", "--http", url); code != exitFailure || !strings.Contains(errs, "requires a token") || !strings.Contains(errs, "--token-file") || !strings.Contains(errs, "STRATA_TOKEN") {
		t.Fatalf("get without a token: %d %s %s", code, out, errs)
	}
	t.Setenv("STRATA_TOKEN", "wrong-0123456789abcdef")
	if code, out, errs := cli(t, "get", "account", "acc-1", "--http", url); code != exitFailure || !strings.Contains(errs, "token from STRATA_TOKEN was refused") || strings.Contains(errs, "wrong-0123") {
		t.Fatalf("get with a wrong token: %d %s %s", code, out, errs)
	}
	t.Setenv("STRATA_TOKEN", roToken)
	if code, out, errs := cli(t, "get", "account", "acc-1", "--http", url); code != 0 || !strings.Contains(out, `"balance": 1005`) || !strings.Contains(out, `"version": 2`) {
		t.Fatalf("get after restart, with a read-only STRATA_TOKEN: %d %s %s", code, out, errs)
	}
	if code, _, errs := cli(t, "send", "account", "acc-1", "Deposit", `{"amount":1}`, "--http", url); code != exitFailure || !strings.Contains(errs, "read-only") {
		t.Fatalf("send with a read-only token: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "projection", "rebuild", "orders", "--token-file", roFile, "--http", url); code != exitFailure || !strings.Contains(errs, "token from --token-file "+roFile+" is read-only") {
		t.Fatalf("rebuild with a read-only --token-file: %d %s", code, errs)
	}
	if code, out, _ := cli(t, "health", "--http", url); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("health: %d %s", code, out)
	}
	// /metrics wants a token like the other routes; a read-only one will do.
	for token, want := range map[string]int{"": 401, roToken: 200} {
		req, _ := http.NewRequest("GET", url+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || want == 200 && !strings.Contains(string(body), "strata_commands_total{") {
			t.Fatalf("GET /metrics with token %q: %d, want %d: %.300s", token, resp.StatusCode, want, body)
		}
	}
	// --token-file wins over STRATA_TOKEN; a server's token file line
	// will do.
	if code, out, errs := cli(t, "send", "account", "acc-1", "Deposit", `{"amount":1}`, "--http", url, "--token-file", tokens+"-rw"); code != exitUsage || !strings.Contains(errs, "--token-file") {
		t.Fatalf("send with a missing --token-file: %d %s %s", code, out, errs)
	}
	if err := os.WriteFile(tokens+"-rw", []byte("read-write "+rwToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli(t, "send", "account", "acc-1", "Deposit", `{"amount":1}`, "--http", url, "--token-file", tokens+"-rw"); code != 0 || !strings.Contains(out, `"version": 3`) {
		t.Fatalf("send after restart, with a read-write --token-file: %d %s %s", code, out, errs)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"launch"}, exitUsage, `unknown command "launch"`},
		{[]string{"send", "account", "acc-1"}, exitUsage, "want AGGREGATE ID TYPE"},
		{[]string{"send", "account", "acc-1", "Deposit", "{amount:5}"}, exitUsage, "is not valid JSON"},
		{[]string{"send", "account", "acc-1", "Deposit", "--expected-version", "x"}, exitUsage, "--expected-version"},
		{[]string{"get", "account"}, exitUsage, "want AGGREGATE ID"},
		{[]string{"get", "account", "a", "--as-of", "noon"}, exitUsage, "RFC 3339"},
		{[]string{"dev", "--kafka-port", "70000"}, exitUsage, "want 0 to 65535"},
		{[]string{"dev", "--partitions", "0"}, exitUsage, "partitions (--partitions): 0"},
		{[]string{"dev", "--log-level", "loud"}, exitUsage, "--log-level"},
		{[]string{"dev", "--log-kafka", "chatty"}, exitUsage, "log.kafka (--log-kafka)"},
		{[]string{"dev", "--nonsense"}, exitUsage, "flag provided but not defined"},
		{[]string{"serve"}, exitUsage, "--brokers is required"},
		// Impossible values: each refused before anything starts, naming
		// the flag.
		{[]string{"dev", "--partitions", "-1"}, exitUsage, "partitions (--partitions): -1, want 1 to 10000"},
		{[]string{"dev", "--partitions", "100000"}, exitUsage, "partitions (--partitions): 100000"},
		{[]string{"dev", "--partitions", "many"}, exitUsage, `invalid value "many" for flag -partitions`},
		{[]string{"dev", "--replication-factor", "0"}, exitUsage, "replication_factor (--replication-factor): 0"},
		{[]string{"dev", "--snapshot-every", "0"}, exitUsage, "snapshot_every (--snapshot-every): 0"},
		{[]string{"dev", "--dedupe-window", "0s"}, exitUsage, "dedupe_window (--dedupe-window): 0s"},
		{[]string{"dev", "--dedupe-window", "forever"}, exitUsage, `invalid value "forever" for flag -dedupe-window`},
		{[]string{"dev", "--read-wait", "1m"}, exitUsage, "read_wait (--read-wait) 1m0s and read_wait_max (--read-wait-max) 30s"},
		{[]string{"dev", "--read-wait", "-1s"}, exitUsage, "read_wait (--read-wait) -1s"},
		{[]string{"dev", "--http", "127.0.0.1:99999"}, exitUsage, `http (--http): "127.0.0.1:99999": the port must be 0 to 65535`},
		{[]string{"dev", "--http", "everywhere"}, exitUsage, `http (--http): "everywhere" is not host:port`},
		{[]string{"dev", "--namespace", "My NS"}, exitUsage, `namespace (--namespace): "My NS" must be lower-case letters`},
		{[]string{"dev", "--data", ""}, exitUsage, "data (--data)"},
		{[]string{"dev", "--log-format", "xml"}, exitUsage, `log.format (--log-format): "xml"`},
		{[]string{"dev", "--metrics", "public"}, exitUsage, `metrics (--metrics): "public", want token`},
		{[]string{"dev", "--projection-max-lag", "-5"}, exitUsage, "projection_max_lag (--projection-max-lag): -5"},
		{[]string{"dev", "--wire-format", "confluent"}, exitUsage, "schema_registry.wire_format (--wire-format) confluent needs schema_registry.url (--schema-registry)"},
		{[]string{"dev", "--schema-registry", "ftp://registry"}, exitUsage, `schema_registry.url (--schema-registry): "ftp://registry"`},
		{[]string{"dev", "--kafka-port", "-1"}, exitUsage, "--kafka-port -1: want 0 to 65535"},
		{[]string{"dev", "--tracing-exporter", "zipkin"}, exitUsage, `tracing.exporter (--tracing-exporter): "zipkin", want none, otlp or stdout`},
		{[]string{"dev", "--tracing-exporter", "otlp", "--tracing-protocol", "http/json"}, exitUsage, `tracing.protocol (--tracing-protocol): "http/json"`},
		{[]string{"dev", "--tracing-exporter", "otlp", "--tracing-endpoint", "collector"}, exitUsage, `tracing.endpoint (--tracing-endpoint): "collector", want host:port or`},
		{[]string{"dev", "--tracing-sample-ratio", "2"}, exitUsage, "tracing.sample_ratio (--tracing-sample-ratio): 2, want 0 to 1"},
		{[]string{"dev", "--tracing-sample-ratio", "lots"}, exitUsage, `invalid value "lots" for flag -tracing-sample-ratio`},
		{[]string{"dev", "--tracing-headers", "api-key"}, exitUsage, `invalid value "api-key" for flag -tracing-headers: "api-key": want NAME=VALUE,...`},
		{[]string{"dev", "--tracing-headers", "api-key=%zz"}, exitUsage, `"api-key=%zz": the value is not URL-encoded`},
		{[]string{"dev", "stray"}, exitUsage, `unexpected argument "stray"`},
		{[]string{"serve", "--brokers", "k:0"}, exitUsage, `brokers (--brokers): "k:0": the port must be 1 to 65535`},
		{[]string{"serve", "--brokers", "kafka"}, exitUsage, `brokers (--brokers): "kafka" is not host:port`},
		{[]string{"serve", "--brokers", "k:9092", "--sasl-mechanism", "GSSAPI"}, exitUsage, `sasl.mechanism (--sasl-mechanism): "GSSAPI"`},
		{[]string{"serve", "--brokers", "k:9092", "--sasl-mechanism", "PLAIN"}, exitUsage, "sasl: PLAIN needs a username"},
		{[]string{"serve", "--brokers", "k:9092", "--tls-cert", "c.pem"}, exitUsage, "cert_file and key_file (--tls-cert, --tls-key) go together"},
		{[]string{"send", "account", "a", "Deposit", "--expected-version", "-1"}, exitUsage, `--expected-version "-1": want a version number`},
		{[]string{"send", "account", "a", "Deposit", "{", "--http", "127.0.0.1:1"}, exitUsage, "is not valid JSON"},
		{[]string{"get", "account", "a", "--version", "x"}, exitUsage, `invalid value "x" for flag -version`},
		{[]string{"events", "account", "a", "--from", "-1"}, exitUsage, `invalid value "-1" for flag -from`},
		{[]string{"view", "accounts", "--limit", "0"}, exitUsage, "--limit 0: want 1 to 1000"},
		{[]string{"view", "accounts", "--limit", "5000"}, exitUsage, "--limit 5000: want 1 to 1000"},
		{[]string{"view", "accounts", "--order", "sideways"}, exitUsage, `--order "sideways": want asc or desc`},
		{[]string{"view", "orders", "--eq", "cus-1"}, exitUsage, "--eq needs --index"},
		{[]string{"schema", "check", "--dir"}, exitUsage, "flag needs an argument: -dir"},
		{[]string{"get", "account", "a", "--http", "127.0.0.1:1"}, exitFailure, "is Strata running?"},
	} {
		code, out, errs := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.msg) {
			t.Errorf("strata %v: exit %d (want %d), output %q lacks %q", tc.args, code, tc.code, out+errs, tc.msg)
		}
	}
}

// TestCLIReportsEveryProblem: several impossible values are reported at
// once, each naming its flag.
func TestCLIReportsEveryProblem(t *testing.T) {
	code, _, errs := cli(t, "dev", "--partitions", "0", "--snapshot-every", "0", "--http", "x", "--log-level", "loud")
	if code != exitUsage {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"--partitions", "--snapshot-every", "--http", "--log-level"} {
		if !strings.Contains(errs, want) {
			t.Errorf("output lacks %s:\n%s", want, errs)
		}
	}
}

// TestBadConfigFiles: a config file that does not parse, or holds an
// impossible value, stops dev and serve before they start, naming the
// file and the line, or the setting and its flag.
func TestBadConfigFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"a syntax error on line 3", "namespace: shop\npartitions: 3\nbrokers: [k:9092\n", ", line 3: did not find expected ',' or ']'"},
		{"a tab on the first line", "\tpartitions: 3\n", ", line 1: found character that cannot start any token"},
		{"a misspelt key", "namespace: shop\npartitons: 3\n", ", line 2: field partitons not found"},
		{"a word for a number", "partitions: many\n", ", line 1: cannot unmarshal !!str `many` into int"},
		{"a word for a duration", "\ndedupe_window: forever\n", ", line 2: cannot unmarshal !!str `forever` into time.Duration"},
		{"a key twice", "partitions: 3\npartitions: 4\n", `, line 2: mapping key "partitions" already defined at line 1`},
		{"not UTF-8", "namespace: caf\xe9\n", ", line 1, column 15: not valid UTF-8"},
		{"two documents", "partitions: 3\n---\npartitions: 4\n", ", line 3: a second YAML document"},
		{"an impossible value", "partitions: 0\nhttp: 127.0.0.1:0\n", "partitions (--partitions): 0"},
		{"an impossible nested value", "log:\n  level: loud\n", `log.level (--log-level): "loud"`},
		{"an unknown tracing exporter", "tracing:\n  exporter: jaeger\n", `tracing.exporter (--tracing-exporter): "jaeger"`},
		{"a misspelt tracing key", "tracing:\n  exporter: otlp\n  sample_rate: 0.5\n", ", line 3: field sample_rate not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"dev"}, {"serve", "--brokers", "127.0.0.1:1"}} {
				code, out, errs := cli(t, append(args, "--config", p)...)
				want := tc.want
				if strings.HasPrefix(want, ",") {
					want = "config " + p + want // the file and line
				}
				if code != exitUsage || !strings.Contains(errs, want) {
					t.Errorf("%s: exit %d, output lacks %q:\n%s%s", args[0], code, want, out, errs)
				}
			}
		})
	}
}

// TestTokenFiles: a bad server token file stops dev and serve before they
// start, naming the file and line and never the token; the client reads
// its --token-file strictly too.
func TestTokenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad", "good-0123456789abcdef\nreadonly s3cret-0123456789abcdef\n")
	for _, args := range [][]string{{"dev"}, {"serve", "--brokers", "127.0.0.1:1"}} {
		code, out, errs := cli(t, append(args, "--auth-token-file", bad)...)
		if code != exitUsage || !strings.Contains(errs, bad+", line 2") || strings.Contains(out+errs, "s3cret") || strings.Contains(out+errs, "good-0123") {
			t.Errorf("%s with a malformed token file: %d %s %s", args[0], code, out, errs)
		}
	}
	missing := filepath.Join(dir, "missing")
	if code, _, errs := cli(t, "dev", "--auth-token-file", missing); code != exitUsage || !strings.Contains(errs, missing) {
		t.Errorf("dev with a missing token file: %d %s", code, errs)
	}
	cfg := write("strata.yaml", "auth_token_file: "+bad+"\n")
	if code, _, errs := cli(t, "dev", "--config", cfg); code != exitUsage || !strings.Contains(errs, bad+", line 2") {
		t.Errorf("auth_token_file in --config: %d %s", code, errs)
	}

	for _, tc := range []struct{ body, token, err string }{
		{"tok-0123456789abcdef\n", "tok-0123456789abcdef", ""},
		{"# mine\n\n  tok-0123456789abcdef  \n", "tok-0123456789abcdef", ""},
		{"read-only tok-0123456789abcdef\n", "tok-0123456789abcdef", ""},
		{"", "", "holds no token"},
		{"tok-0123456789abcdef\nother-0123456789abcdef\n", "", "holds 2 lines"},
		{"tok-0123 456789abcdef\n", "", "without spaces"},
	} {
		a := &apiClient{tokenFile: write("client", tc.body)}
		tok, from, err := a.token()
		if tok != tc.token || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) || from != "--token-file "+a.tokenFile {
			t.Errorf("token file %q: %q from %q, %v", tc.body, tok, from, err)
		}
		if err != nil && strings.Contains(err.Error(), "0123") {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	t.Setenv("STRATA_TOKEN", " env-0123456789abcdef\n")
	if tok, from, err := (&apiClient{}).token(); tok != "env-0123456789abcdef" || from != "STRATA_TOKEN" || err != nil {
		t.Errorf("STRATA_TOKEN: %q from %q, %v", tok, from, err)
	}
}

// TestMetricsAndReadinessFlags: --metrics and --projection-max-lag (or
// their config keys) reach the node; a bound of 0 means none.
func TestMetricsAndReadinessFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		access httpapi.MetricsAccess
		maxLag int64
	}{
		{nil, httpapi.MetricsToken, 100000},
		{[]string{"--metrics", "open", "--projection-max-lag", "500"}, httpapi.MetricsOpen, 500},
		{[]string{"--metrics", "off", "--projection-max-lag", "0"}, httpapi.MetricsOff, -1},
		{[]string{"--config", writeFile(t, "metrics: open\nprojection_max_lag: 7\n")}, httpapi.MetricsOpen, 7},
		{[]string{"--config", writeFile(t, "metrics: open\n"), "--metrics", "off"}, httpapi.MetricsOff, 100000},
	} {
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		var nf nodeFlags
		nf.register(fs, t.TempDir())
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		_, cfg, err := nf.resolve(io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.MetricsAccess != tc.access || cfg.ProjectionMaxLag != tc.maxLag {
			t.Errorf("%v: metrics %q, projection max lag %d; want %q, %d", tc.args, cfg.MetricsAccess, cfg.ProjectionMaxLag, tc.access, tc.maxLag)
		}
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
