package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/internal/position"
)

// testReadWaitTimesOut: a read given a position the view has not reached
// waits ?wait= (bounded) and answers 503 with how far behind it is.
func testReadWaitTimesOut(t *testing.T, b *broker) {
	ns := namespace()
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir()})
	s.send(t, "acc-w", "OpenAccount", `{"owner":"w","initial_balance":1}`)
	future := position.Position{{Topic: kafka.Names{Namespace: ns}.Events("account"), Partition: 0}: 1 << 40}.Token()
	var e map[string]any
	start := time.Now()
	code := s.do(t, "GET", "/v1/views/accounts/acc-w?wait=300ms&position="+future, "", &e)
	took := time.Since(start)
	if code != 503 || !strings.Contains(e["error"].(string), "offsets behind") || took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("read of a future position: %d %v after %s", code, e, took)
	}
	if code := s.do(t, "GET", "/v1/views/accounts/acc-w?wait=soon&position="+future, "", &e); code != 400 {
		t.Fatalf("bad wait: %d %v", code, e)
	}
}
