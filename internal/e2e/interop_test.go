package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// requireTool finds an outside tool the interop case needs. Missing tools
// skip the case, unless STRATA_REQUIRE_INTEROP=1 (CI installs them), where
// they fail it.
func requireTool(t *testing.T, name string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		err = exec.Command(path, check...).Run()
	}
	if err != nil {
		msg := name + " is not usable (" + err.Error() + "): install it (apt-get install kcat; pip install fastavro) to run the interoperability case"
		if os.Getenv("STRATA_REQUIRE_INTEROP") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// testInteropKcatAndFastavro: outside tools interoperate. kcat (librdkafka,
// with its own partitioner) produces a JSON command and reads its result;
// an event Strata wrote is decoded by fastavro (Python) from the .avsc file.
func testInteropKcatAndFastavro(t *testing.T, b *broker) {
	kcat := requireTool(t, "kcat", "-V")
	python := requireTool(t, "python3", "-c", "import fastavro")
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	brokers := strings.Join(b.addrs, ",")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce := exec.CommandContext(ctx, kcat, "-P", "-b", brokers, "-t", names.Commands("account"), "-K", "|",
		"-H", "strata-command-type=OpenAccount", "-H", "strata-command-id=kcat-1", "-H", "content-type=application/json")
	produce.Stdin = strings.NewReader(`acc-kc|{"owner":"kc","initial_balance":9}` + "\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	var result string
	for result == "" {
		out, err := exec.CommandContext(ctx, kcat, "-C", "-b", brokers, "-t", names.Results("account"), "-o", "beginning", "-e", "-q",
			"-X", "isolation.level=read_committed", "-f", "%k\t%s\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat consume: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "\t"); ok && k == "kcat-1" {
				result = v
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no result for kcat-1 within 60s")
		}
		if result == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !strings.Contains(result, `"status":"accepted"`) || !strings.Contains(result, `"aggregate_id":"acc-kc"`) {
		t.Fatalf("result read by kcat: %s", result)
	}
	var res struct{ Position string }
	if err := json.Unmarshal([]byte(result), &res); err != nil {
		t.Fatal(err)
	}
	var agg accountState
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-kc?position="+res.Position, "", &agg); code != 200 || agg.State.Balance != 9 {
		t.Fatalf("state of the account opened through kcat: %d %+v", code, agg)
	}

	events := readUntil(t, b, names.Events("account"), func(rs []*kgo.Record) bool { return len(rs) >= 1 })
	rec := filepath.Join(t.TempDir(), "event.bin")
	if err := os.WriteFile(rec, events[0].Value, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, python, "testdata/decode_soe.py", "../../schemas/account/AccountOpened.v3.avsc", rec).CombinedOutput()
	if err != nil {
		t.Fatalf("fastavro could not decode Strata's event: %v\n%s", err, out)
	}
	if got := string(bytes.TrimSpace(out)); got != `{"currency": "EUR", "holder": "kc", "initial_balance": 9}` {
		t.Fatalf("fastavro decoded %s", got)
	}
}
