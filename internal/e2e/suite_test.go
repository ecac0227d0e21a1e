package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
)

// suite is the conformance suite: every case runs against whatever broker
// it is given. Cases use their own topic namespace, so they can share one.
var suite = []struct {
	name string
	run  func(*testing.T, *broker)
}{
	{"HTTPWalkthrough", testHTTPWalkthrough},
	{"IdempotentCommandID", testIdempotentCommandID},
	{"DedupeWindow", testDedupeWindow},
	{"CommandOverKafka", testCommandOverKafka},
	{"BadRecordsGoToTheDLQ", testBadRecordsGoToTheDLQ},
	{"HostileCommandRecords", testHostileCommandRecords},
	{"OversizedCommandRecord", testOversizedCommandRecord},
	{"Restart", testRestart},
	{"RestoreIntoEmptyDataDir", testRestoreIntoEmptyDataDir},
	{"BadHTTPInput", testBadHTTPInput},
	{"HostileHTTP", testHostileHTTP},
	{"ConnectionBurst", testConnectionBurst},
	{"AbortedTransactionsAreInvisible", testAbortedTransactionsAreInvisible},
	{"CrashAfterCommitBeforePebble", testCrashAfterCommitBeforePebble},
	{"RedeliveredCommandsAreNotDecidedTwice", testRedeliveredCommandsAreNotDecidedTwice},
	{"ResendInTheSameBatch", testResendInTheSameBatch},
	{"TopicsCreatedAndChecked", testTopicsCreatedAndChecked},
	{"DataDirOfOtherTopics", testDataDirOfOtherTopics},
	{"InteropKcatAndFastavro", testInteropKcatAndFastavro},
	{"SnapshotTopicIsCompacted", testSnapshotTopicIsCompacted},
	{"OldEventsReplayIntoNewCode", testOldEventsReplayIntoNewCode},
	{"UnreadableEventStopsOnlyItsPartition", testUnreadableEventStopsOnlyItsPartition},
	{"HostileEventRecords", testHostileEventRecords},
	{"EventsWithoutAggregateIDOrVersion", testEventsWithoutAggregateIDOrVersion},
	{"ConfluentWireFormat", testConfluentWireFormat},
	{"SnapshotsAndRestore", testSnapshotsAndRestore},
	{"ScaleOutWithAStoppedInstance", testScaleOutWithAStoppedInstance},
	{"SeedReadModel", testSeedReadModel},
	{"PublishedViewTopic", testPublishedViewTopic},
	{"Parking", testParking},
	{"Rebuild", testRebuild},
	{"ReadWaitTimesOut", testReadWaitTimesOut},
	{"AuthAndSlowClients", testAuthAndSlowClients},
	{"TracingOn", testTracingOn},
	{"TracingOff", testTracingOff},
	{"Metrics", testMetrics},
	{"ReadyzProjectionLag", testReadyzProjectionLag},
	{"ReadyzWhileCatchingUp", testReadyzWhileCatchingUp},
	{"ReadyzBrokerDown", testReadyzBrokerDown},
	{"LogsSayWhere", testLogsSayWhere},
	{"CatchUpWaitsForTheBrokers", testCatchUpWaitsForTheBrokers},
	{"SeedReadModelOnSinks", testSeedReadModelOnSinks},
}

// TestSuite runs the suite on a fresh embedded broker per case, or on the
// cluster in STRATA_TEST_BROKERS (make test-kafka).
func TestSuite(t *testing.T) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newBroker(t))
		})
	}
}

// TestSuiteOnKafkaContainer runs the suite on a Kafka container started by
// testcontainers-go, where a Docker engine is reachable.
func TestSuiteOnKafkaContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no containers")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := tckafka.Run(ctx, "confluentinc/confluent-local:7.5.0")
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start Kafka container: %v", err)
	}
	addrs, err := c.Brokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{addrs: addrs}
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, b) })
	}
}
