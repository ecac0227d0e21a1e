package main

import (
	"strings"
	"testing"
)

// TestSoakUsageErrors: impossible soak flags are refused before anything
// starts, naming the flag. (The soak itself is tested in internal/soak and
// runs in make soak.)
func TestSoakUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"soak", "--duration", "1s"}, "--duration 1s: want at least 5s"},
		{[]string{"soak", "--instances", "0"}, "--instances 0: want at least 1"},
		{[]string{"soak", "--instances", "17"}, "instances 17: want 1 to 16"},
		{[]string{"soak", "--clients", "0"}, "--clients 0: want at least 1"},
		{[]string{"soak", "--chaos-every", "0s"}, "--chaos-every and --progress must be more than zero"},
		{[]string{"soak", "--chaos", "kill,flood"}, `chaos "kill,flood": want a list of kill, pause and broker, or none`},
		{[]string{"soak", "--broker-stop", "gently"}, `broker stop "gently": want kill, graceful or both`},
		{[]string{"soak", "--pause", "5s"}, "pause 5s: want more than the 10s group session timeout"},
		{[]string{"soak", "--broker-kill-cmd", "kill-node {node}"}, "the broker kill and start commands go together"},
		{[]string{"soak", "--broker-kill-cmd", "k {node}", "--broker-start-cmd", "s {node}"}, "need the brokers they act on"},
		{[]string{"soak", "--accounts", "0"}, "--accounts 0: want at least 1"},
		{[]string{"soak", "--partitions", "1001"}, "partitions 1001: want 1 to 1000"},
		{[]string{"soak", "stray"}, `unexpected argument "stray"`},
	} {
		code, out, errs := cli(t, tc.args...)
		if code != exitUsage || !strings.Contains(out+errs, tc.msg) {
			t.Errorf("strata %v: exit %d (want %d), output %q lacks %q", tc.args, code, exitUsage, out+errs, tc.msg)
		}
	}
}
