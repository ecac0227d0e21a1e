package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDevExportsSpans: with the stdout exporter (set in the config file,
// the sample ratio overridden by its flag), strata dev prints the spans
// of a command in the caller's trace, and of one without a trace context,
// and flushes them when it stops.
func TestDevExportsSpans(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(cfg, []byte("tracing:\n  exporter: stdout\n  sample_ratio: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--config", cfg, "--tracing-sample-ratio", "1", "--data", filepath.Join(dir, "data"),
			"--kafka-port", "0", "--http", "127.0.0.1:0", "--log-level", "warn"}, nil, pw, io.Discard)
		pw.Close()
	}()
	var (
		mu  sync.Mutex
		out strings.Builder
	)
	urls := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			out.WriteString(l + "\n")
			mu.Unlock()
			if i := strings.Index(l, "HTTP API at "); i >= 0 {
				urls <- strings.Fields(l[i+len("HTTP API at "):])[0]
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(60 * time.Second):
		t.Fatal("strata dev did not serve in 60s")
	}
	post := func(id, body, traceparent string) {
		t.Helper()
		req, _ := http.NewRequest("POST", url+"/v1/commands/account/"+id, strings.NewReader(body))
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d", id, resp.StatusCode)
		}
	}
	const trace = "0af7651916cd43dd8448eb211c80319c"
	post("acc-1", `{"type":"OpenAccount","data":{"owner":"ada","initial_balance":10}}`, "00-"+trace+"-b7ad6b7169203331-01")
	post("acc-1", `{"type":"Deposit","data":{"amount":5}}`, "")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("strata dev did not stop in 30s")
	}
	<-read
	mu.Lock()
	printed := out.String()
	mu.Unlock()
	for _, want := range []string{`"Name":"command account.OpenAccount"`, `"TraceID":"` + trace + `"`, `"Name":"command account.Deposit"`,
		`"Name":"POST /v1/commands/{aggregate}/{id}"`, `"Value":"strata"`} {
		if !strings.Contains(printed, want) {
			t.Errorf("stdout lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", printed)
	}
}
