// Package kafka is Strata's Kafka wiring: topic names and settings, creating
// and checking topics, and the headers Strata puts on records.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/strata-es/strata/aggregates"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers Strata reads and writes.
const (
	HeaderCommandType     = "strata-command-type"
	HeaderCommandID       = "strata-command-id"
	HeaderExpectedVersion = "strata-expected-version"
	HeaderContentType     = "content-type"
	HeaderEventType       = "strata-event-type"
	HeaderVersion         = "strata-aggregate-version"
	HeaderDLQReason       = "strata-dlq-reason"
	HeaderDLQSource       = "strata-dlq-source"
	// HeaderDLQTruncated is on a dead-letter copy whose value was cut to
	// fit a record: the original value's length.
	HeaderDLQTruncated  = "strata-dlq-truncated"
	HeaderForwardedFrom = "strata-forwarded-from"
	HeaderEventsOffset  = "strata-events-offset"
	// HeaderCommandOffset is on a result: the offset of the command
	// record it answers, in the commands partition of the same number.
	HeaderCommandOffset = "strata-command-offset"

	ContentTypeJSON = "application/json"
	ContentTypeAvro = "application/vnd.apache.avro+binary" // single-object encoding
)

// Names gives the topics of a namespace.
type Names struct{ Namespace string }

func (n Names) Commands(agg string) string  { return n.Namespace + "." + agg + ".commands" }
func (n Names) Events(agg string) string    { return n.Namespace + "." + agg + ".events" }
func (n Names) Snapshots(agg string) string { return n.Namespace + "." + agg + ".snapshots" }
func (n Names) Results(agg string) string   { return n.Namespace + "." + agg + ".results" }
func (n Names) DLQ(agg string) string       { return n.Namespace + "." + agg + ".dlq" }
func (n Names) View(view string) string     { return n.Namespace + ".view." + view }

// ProcessorGroup is the consumer group that owns an aggregate's commands.
func (n Names) ProcessorGroup(agg string) string { return n.Namespace + "." + agg + ".processor" }

// CheckInstanceID reports whether id can name a process in the
// processors' groups and transactional IDs: 1 to 63 lower-case letters,
// digits and '-'.
func CheckInstanceID(id string) error {
	if aggregates.CheckName("i"+id) != nil {
		return errors.New("want 1 to 63 lower-case letters, digits and '-'")
	}
	return nil
}

// TopicSpec is a topic Strata needs, with the settings it depends on.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Configs are set on creation. The ones in Must are checked on
	// existing topics too: Strata refuses to run when they differ.
	Configs map[string]string
	Must    []string
}

const (
	forever = "-1"
	day     = "86400000"
	week    = "604800000"
)

// AggregateTopics returns the topics of one aggregate type. Commands and
// events share the partition count, so that the owner of commands
// partition p is the only writer of events partition p.
func (n Names) AggregateTopics(agg string, partitions int32) []TopicSpec {
	return []TopicSpec{
		{Name: n.Commands(agg), Partitions: partitions,
			Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": week}, Must: []string{"cleanup.policy"}},
		{Name: n.Events(agg), Partitions: partitions,
			Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": forever, "retention.bytes": forever},
			Must:    []string{"cleanup.policy", "retention.ms", "retention.bytes"}},
		{Name: n.Snapshots(agg), Partitions: partitions,
			Configs: map[string]string{"cleanup.policy": "compact"}, Must: []string{"cleanup.policy"}},
		{Name: n.Results(agg), Partitions: partitions,
			Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": day}, Must: []string{"cleanup.policy"}},
		{Name: n.DLQ(agg), Partitions: partitions,
			Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": week}, Must: []string{"cleanup.policy"}},
	}
}

// ViewTopics returns the topics of a published view: the compacted view
// topic, keyed by row key, and the one-partition topic whose consumer-group
// owner is the view's publisher (never written).
func (n Names) ViewTopics(view string, partitions int32, election string) []TopicSpec {
	return []TopicSpec{
		{Name: n.View(view), Partitions: partitions,
			Configs: map[string]string{"cleanup.policy": "compact"}, Must: []string{"cleanup.policy"}},
		{Name: election, Partitions: 1,
			Configs: map[string]string{"cleanup.policy": "compact"}, Must: []string{"cleanup.policy"}},
	}
}

// ErrTopicMismatch is returned when an existing topic's settings differ from
// what Strata needs.
var ErrTopicMismatch = errors.New("strata: existing topic does not match")

// TopicIDs are the brokers' IDs of topics, by name; a broker older than
// Kafka 2.8 reports none.
type TopicIDs map[string]kadm.TopicID

// EnsureTopics creates the missing topics and checks the existing ones:
// partition count and the Must configs. replicationFactor -1 uses the
// broker's default. Every mismatch is reported, naming topic, setting, what
// it is and what it must be. It returns the IDs the brokers gave of the
// topics, as they listed or created them.
func EnsureTopics(ctx context.Context, adm *kadm.Client, replicationFactor int16, specs []TopicSpec) (TopicIDs, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	ids := TopicIDs{}
	var problems []error
	var check []TopicSpec
	var raced []TopicSpec
	for _, s := range specs {
		td, ok := existing[s.Name]
		if ok && td.Err == nil {
			ids[s.Name] = td.ID
			if err := checkPartitions(s, td); err != nil {
				problems = append(problems, err)
			}
			check = append(check, s)
			continue
		}
		configs := map[string]*string{}
		for k, v := range s.Configs {
			configs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, replicationFactor, configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			// It exists after all: another instance created it between
			// our list and create, or the broker we listed from had not
			// heard of it yet. Check it like any existing topic.
			raced = append(raced, s)
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("create topic %s: %w", s.Name, err))
			continue
		}
		ids[s.Name] = resp.ID
	}
	if len(raced) > 0 {
		if err := recheck(ctx, adm, raced, ids); err != nil {
			problems = append(problems, err)
		}
		check = append(check, raced...)
	}
	if len(check) > 0 {
		if err := checkConfigs(ctx, adm, check); err != nil {
			problems = append(problems, err)
		}
	}
	return ids, errors.Join(problems...)
}

func checkPartitions(s TopicSpec, td kadm.TopicDetail) error {
	if got := int32(len(td.Partitions)); got != s.Partitions {
		return fmt.Errorf("%w: topic %s has %d partitions, Strata needs %d (commands and events topics of an aggregate must agree); use --partitions %d or recreate the topic",
			ErrTopicMismatch, s.Name, got, s.Partitions, got)
	}
	return nil
}

// recheck lists topics that exist but were not listed, retrying while the
// brokers' metadata catches up, checks their partition counts and notes
// their IDs in ids.
func recheck(ctx context.Context, adm *kadm.Client, specs []TopicSpec, ids TopicIDs) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tds, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		var problems []error
		missing := false
		for _, s := range specs {
			td, ok := tds[s.Name]
			if !ok || td.Err != nil || len(td.Partitions) == 0 {
				missing = true
				continue
			}
			ids[s.Name] = td.ID
			if err := checkPartitions(s, td); err != nil {
				problems = append(problems, err)
			}
		}
		if !missing {
			return errors.Join(problems...)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v exist but no broker lists them after 30s", names)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func checkConfigs(ctx context.Context, adm *kadm.Client, specs []TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	// A topic just created is not yet known to every broker of a
	// cluster: the one asked may answer UNKNOWN_TOPIC_OR_PARTITION for a
	// moment (seen on a 3-node Kafka). Ask again for up to 10s.
	var rcs kadm.ResourceConfigs
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		rcs, err = adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return fmt.Errorf("describe topic configs: %w", err)
		}
		unknown := false
		for _, rc := range rcs {
			unknown = unknown || errors.Is(rc.Err, kerr.UnknownTopicOrPartition)
		}
		if !unknown || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var problems []error
	for _, s := range specs {
		rc, err := rcs.On(s.Name, nil)
		if err != nil {
			problems = append(problems, fmt.Errorf("describe configs of %s: %w", s.Name, err))
			continue
		}
		if rc.Err != nil {
			problems = append(problems, fmt.Errorf("describe configs of %s: %w", s.Name, rc.Err))
			continue
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		must := append([]string(nil), s.Must...)
		sort.Strings(must)
		for _, k := range must {
			want := s.Configs[k]
			if !sameConfig(k, got[k], want) {
				problems = append(problems, fmt.Errorf("%w: topic %s has %s=%q, Strata needs %q (alter it with kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config %s=%s)",
					ErrTopicMismatch, s.Name, k, got[k], want, s.Name, k, want))
			}
		}
	}
	return errors.Join(problems...)
}

// sameConfig compares config values, treating any negative retention as
// "forever".
func sameConfig(key, got, want string) bool {
	if got == want {
		return true
	}
	if key == "retention.ms" || key == "retention.bytes" {
		g, err1 := strconv.ParseInt(got, 10, 64)
		w, err2 := strconv.ParseInt(want, 10, 64)
		return err1 == nil && err2 == nil && g < 0 && w < 0
	}
	return false
}

// PartitionFor returns the partition Kafka's default partitioner (murmur2,
// as in the Java client and kgo's default) gives key among n partitions.
// Commands and events of one aggregate land on the same partition number
// because both use it.
func PartitionFor(key []byte, n int32) int32 {
	return int32(keyPartitioner.Partition(&kgo.Record{Key: key}, int(n)))
}

// keyPartitioner is only ever given keyed records, for which kgo's sticky
// key partitioner is a pure hash: safe to share.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")
