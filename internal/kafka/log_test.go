package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestClientLogger(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	lv, err := ParseClientLogLevel("INFO")
	if err != nil || lv != kgo.LogLevelInfo {
		t.Fatalf("ParseClientLogLevel(INFO) = %v, %v", lv, err)
	}
	l := ClientLogger(log, lv)
	if l.Level() != kgo.LogLevelInfo {
		t.Fatalf("level %v", l.Level())
	}
	l.Log(kgo.LogLevelInfo, "ending transaction", "transactional_id", "g.n1", "commit", true)
	l.Log(kgo.LogLevelDebug, "wrote Produce v13") // below the handler's level
	l.Log(kgo.LogLevelWarn, "unable to dial")
	got := buf.String()
	for _, want := range []string{`level=INFO msg="ending transaction" component=kgo transactional_id=g.n1 commit=true`, `level=WARN msg="unable to dial" component=kgo`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Produce") {
		t.Errorf("a debug record passed an info handler:\n%s", got)
	}
	for _, s := range []string{"", "off", "none"} {
		if lv, err := ParseClientLogLevel(s); err != nil || lv != kgo.LogLevelNone {
			t.Errorf("ParseClientLogLevel(%q) = %v, %v; want none", s, lv, err)
		}
	}
	if _, err := ParseClientLogLevel("chatty"); err == nil || !strings.Contains(err.Error(), `"chatty", want off, error, warn, info or debug`) {
		t.Errorf("ParseClientLogLevel(chatty) = %v", err)
	}
}
