package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestListOffsetsRetries: errors that pass by themselves (a broker
// restarting, a topic not yet everywhere) are retried; others are not.
func TestListOffsetsRetries(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	ok := kadm.ListedOffsets{"t": {0: {Topic: "t", Partition: 0, Offset: 7}}}
	for _, tc := range []struct {
		name  string
		first error
		retry bool
	}{
		{"a broker being restarted", &kadm.ShardErrors{Name: "ListOffsets", Errs: []kadm.ShardError{{Err: fmt.Errorf("unable to dial: %w", dial)}}}, true},
		{"leadership moving", kerr.NotLeaderForPartition, true},
		{"a topic not yet on every broker", kerr.UnknownTopicOrPartition, true},
		{"not authorized", kerr.TopicAuthorizationFailed, false},
		{"anything else", errors.New("boom"), false},
	} {
		calls := 0
		list := func(context.Context, ...string) (kadm.ListedOffsets, error) {
			calls++
			if calls == 1 {
				return nil, tc.first
			}
			return ok, nil
		}
		got, err := ListOffsets(context.Background(), list, 1, "t")
		switch {
		case tc.retry && (err != nil || calls != 2):
			t.Errorf("%s: %d calls, error %v; want a retry and success", tc.name, calls, err)
		case tc.retry && got["t"][0].Offset != 7:
			t.Errorf("%s: offsets %v", tc.name, got)
		case !tc.retry && (err == nil || calls != 1):
			t.Errorf("%s: %d calls, error %v; want no retry", tc.name, calls, err)
		}
	}
}
