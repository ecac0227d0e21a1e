package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/strata-es/strata/internal/config"
)

// parse parses flags that may come before, between or after positional
// arguments (strata send account acc-1 Deposit '{}' --http URL) and returns
// the positionals. An error has been printed with the command's usage.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer, positional string) ([]string, error) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: strata %s %s\n\nFlags:\n", fs.Name(), positional)
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "strata %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return exitUsage
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// headersFlag is a NAME=VALUE,... flag with URL-encoded values, the format
// of OTEL_EXPORTER_OTLP_HEADERS.
type headersFlag map[string]string

func (h *headersFlag) String() string {
	if h == nil {
		return ""
	}
	parts := make([]string, 0, len(*h))
	for k, v := range *h {
		parts = append(parts, k+"="+url.PathEscape(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (h *headersFlag) Set(s string) error {
	m := map[string]string{}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%q: want NAME=VALUE,... (values URL-encoded)", kv)
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return fmt.Errorf("%q: the value is not URL-encoded: %v", kv, err)
		}
		m[strings.TrimSpace(k)] = val
	}
	*h = m
	return nil
}
