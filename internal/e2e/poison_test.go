package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testUnreadableEventStopsOnlyItsPartition: an event this build cannot
// read (a fingerprint from a newer release) on the events topic stops its
// partition, in the processor and in the projection, with an error naming
// topic, partition, offset and fingerprint; it is never skipped, and the
// other partitions go on.
func testUnreadableEventStopsOnlyItsPartition(t *testing.T, b *broker) {
	ns := namespace()
	names := kafka.Names{Namespace: ns}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.stop(t)

	// Two accounts on different partitions.
	bad, good := "acc-p0", ""
	for i := 0; good == ""; i++ {
		id := fmt.Sprintf("acc-q%d", i)
		if kafka.PartitionFor([]byte(id), 4) != kafka.PartitionFor([]byte(bad), 4) {
			good = id
		}
	}
	badPart := kafka.PartitionFor([]byte(bad), 4)
	poison := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, 0x02)
	cl := kafkaClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl, &kgo.Record{Topic: names.Events("account"), Partition: badPart, Key: []byte(bad), Value: poison,
		Headers: hdrs("strata-event-type", "AccountOpened", "strata-aggregate-version", "1")})

	s = startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(), commandTimeout: 8 * time.Second}) // ample for the first command after a start; the 504 below takes as long
	code, res := s.send(t, good, "OpenAccount", `{"owner":"gus","initial_balance":1}`)
	if code != 200 {
		t.Fatalf("a command on a healthy partition: %d %v", code, res)
	}
	var row accountRow
	if code := s.do(t, "GET", "/v1/views/accounts/"+good+"?position="+res["position"].(string), "", &row); code != 200 || row.Balance != 1 {
		t.Fatalf("view of the healthy partition: %d %+v", code, row)
	}
	var st struct {
		Processors []struct {
			Aggregate string
			Failed    map[string]string
		}
		Projections []struct {
			Name   string
			Failed map[string]string
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.do(t, "GET", "/v1/status", "", &st)
		// accounts and customers read the account events; orders does not.
		failedViews := map[string]int{}
		for _, p := range st.Projections {
			failedViews[p.Name] = len(p.Failed)
		}
		if len(st.Processors) == 2 && st.Processors[0].Aggregate == "account" && len(st.Processors[0].Failed) == 1 && len(st.Processors[1].Failed) == 0 &&
			failedViews["accounts"] == 1 && failedViews["customers"] == 1 && failedViews["orders"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show the stopped partition: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	procWhy := st.Processors[0].Failed[fmt.Sprint(badPart)]
	viewWhy := st.Projections[0].Failed[fmt.Sprintf("%s/%d", names.Events("account"), badPart)]
	for _, why := range []string{procWhy, viewWhy} {
		for _, want := range []string{names.Events("account"), fmt.Sprintf("partition %d offset 0", badPart), "unknown schema fingerprint 0807060504030201"} {
			if !strings.Contains(why, want) {
				t.Errorf("reason %q lacks %q", why, want)
			}
		}
	}
	var ready map[string]any
	if code := s.do(t, "GET", "/readyz", "", &ready); code != 503 {
		t.Errorf("readyz with a stopped partition: %d %v", code, ready)
	}
	// Commands for the stopped partition wait rather than being decided
	// on a state that lacks an event.
	var out map[string]any
	if code := s.do(t, "POST", "/v1/commands/account/"+bad, `{"type":"Deposit","data":{"amount":1}}`, &out); code != 504 {
		t.Fatalf("command on the stopped partition: %d %v, want 504", code, out)
	}
}
