package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBrowseCLI: the CLI reads what the console shows: the aggregate
// types, a type's IDs by prefix page by page, the views, the dead letters
// and the parked events; and dev prints where the console is.
func TestBrowseCLI(t *testing.T) {
	url, _, printed := startStrata(t, "dev", "--data", t.TempDir(), "--kafka-port", "0", "--http", "127.0.0.1:0", "--log-level", "warn")
	broker := regexp.MustCompile(`embedded Kafka broker at (\S+)`).FindStringSubmatch(printed)
	if broker == nil {
		t.Fatalf("no broker address in %q", printed)
	}
	resp, err := http.Get(url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the console of strata dev: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, id := range []string{"acc-1", "acc-2", "acc-3", "bob-1"} {
		if code, out, errs := cli(t, "send", "account", id, "OpenAccount", `{"owner":"o","initial_balance":1}`, "--http", url); code != 0 {
			t.Fatalf("send %s: %d %s %s", id, code, out, errs)
		}
	}
	if code, out, _ := cli(t, "aggregates", "--http", url); code != 0 || !strings.Contains(out, `"name": "account"`) || !strings.Contains(out, `"MoneyDeposited"`) {
		t.Fatalf("aggregates: %d %s", code, out)
	}
	var page struct {
		Aggregates []struct{ ID string }
		Next       string
	}
	code, out, _ := cli(t, "aggregates", "account", "--prefix", "acc-", "--limit", "2", "--http", url)
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Aggregates) != 2 || page.Aggregates[0].ID != "acc-1" || page.Next == "" {
		t.Fatalf("aggregates account --prefix acc- --limit 2: %d %s", code, out)
	}
	code, out, _ = cli(t, "aggregates", "account", "--prefix", "acc-", "--limit", "2", "--cursor", page.Next, "--http", url)
	page.Aggregates, page.Next = nil, ""
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Aggregates) != 1 || page.Aggregates[0].ID != "acc-3" || page.Next != "" {
		t.Fatalf("the next page: %d %s", code, out)
	}
	if code, out, _ := cli(t, "views", "--http", url); code != 0 || !strings.Contains(out, `"customer_id"`) {
		t.Fatalf("views: %d %s", code, out)
	}
	if code, out, _ := cli(t, "projection", "parked", "accounts", "--http", url); code != 0 || !strings.Contains(out, `"events": []`) {
		t.Fatalf("projection parked: %d %s", code, out)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad := &kgo.Record{Topic: "strata.account.commands", Key: []byte("acc-9"), Value: []byte("{nope"),
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}, {Key: "strata-command-type", Value: []byte("Deposit")}}}
	if err := cl.ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errs := cli(t, "dlq", "account", "--limit", "5", "--http", url)
		if code == 0 && strings.Contains(out, `"key": "acc-9"`) && strings.Contains(out, `"reason": "Deposit data`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dlq account: %d %s %s", code, out, errs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"aggregates", "account", "order"}, "want at most one AGGREGATE"},
		{[]string{"aggregates", "--prefix", "acc"}, "name it"},
		{[]string{"aggregates", "account", "--limit", "0"}, "--limit 0: want 1 to 1000"},
		{[]string{"dlq"}, "want the AGGREGATE type"},
		{[]string{"dlq", "account", "--limit", "501"}, "--limit 501: want 1 to 500"},
		{[]string{"projection", "parked"}, "want the projection's NAME"},
		{[]string{"views", "extra"}, `unexpected argument "extra"`},
	} {
		if code, out, errs := cli(t, append(tc.args, "--http", url)...); code != exitUsage || !strings.Contains(out+errs, tc.msg) {
			t.Errorf("strata %v: exit %d, %q lacks %q", tc.args, code, out+errs, tc.msg)
		}
	}
	if code, _, errs := cli(t, "dlq", "spaceship", "--http", url); code != exitNotFound || !strings.Contains(errs, `unknown aggregate type \"spaceship\"`) {
		t.Errorf("dlq of an unknown type: %d %s", code, errs)
	}
}
