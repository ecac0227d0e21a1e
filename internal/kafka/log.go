package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ParseClientLogLevel reads the level of the Kafka client's own logs (the
// log.kafka setting): off, error, warn, info or debug.
func ParseClientLogLevel(s string) (kgo.LogLevel, error) {
	switch strings.ToLower(s) {
	case "", "off", "none":
		return kgo.LogLevelNone, nil
	case "error":
		return kgo.LogLevelError, nil
	case "warn":
		return kgo.LogLevelWarn, nil
	case "info":
		return kgo.LogLevelInfo, nil
	case "debug":
		return kgo.LogLevelDebug, nil
	}
	return kgo.LogLevelNone, fmt.Errorf("%q, want off, error, warn, info or debug", s)
}

// ClientLogger passes franz-go's logs at level and above to log, as
// records with component=kgo. At info, franz-go tells every step of its
// transactions and group sessions (begin, the offsets committed, the end
// and its outcome, each join and the offsets fetched): what an
// investigation of a duplicate or a stall needs. It is off by default:
// at info it writes several lines per transaction. The records go through
// log's handler, so its own level filters them too.
func ClientLogger(log *slog.Logger, level kgo.LogLevel) kgo.Logger {
	return &clientLogger{log: log.With("component", "kgo"), level: level}
}

type clientLogger struct {
	log   *slog.Logger
	level kgo.LogLevel
}

func (l *clientLogger) Level() kgo.LogLevel { return l.level }

func (l *clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var lv slog.Level
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelInfo:
		lv = slog.LevelInfo
	default:
		lv = slog.LevelDebug
	}
	l.log.Log(context.Background(), lv, msg, keyvals...)
}
