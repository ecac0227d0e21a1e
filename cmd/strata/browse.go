package main

// The CLI side of the console's read endpoints: what aggregate types and
// views there are, a type's IDs by prefix, the dead letters and the
// parked events.

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

func runAggregates(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("aggregates", flag.ContinueOnError)
	api := apiFlags(fs)
	prefix := fs.String("prefix", "", "only the IDs that start with this")
	limit := fs.Int("limit", 20, "IDs per page (1 to 1000)")
	cursor := fs.String("cursor", "", "the next value of the previous page")
	pos, err := parse(fs, args, stderr, "[AGGREGATE] [--prefix P] [--limit N] [--cursor C] [flags]")
	if err != nil {
		return flagExit(err)
	}
	switch {
	case len(pos) > 1:
		return usageError(fs, stderr, "want at most one AGGREGATE, got %d arguments", len(pos))
	case len(pos) == 0 && (*prefix != "" || *cursor != ""):
		return usageError(fs, stderr, "--prefix and --cursor search the IDs of an AGGREGATE type: name it")
	case len(pos) == 0:
		return api.call(ctx, http.MethodGet, "/v1/aggregates", nil, nil, stdout, stderr)
	case *limit < 1 || *limit > 1000:
		return usageError(fs, stderr, "--limit %d: want 1 to 1000", *limit)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *prefix != "" {
		q.Set("prefix", *prefix)
	}
	if *cursor != "" {
		q.Set("cursor", *cursor)
	}
	return api.call(ctx, http.MethodGet, "/v1/aggregates/"+url.PathEscape(pos[0]), q, nil, stdout, stderr)
}

func runViews(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return simpleGet(ctx, "views", "/v1/views", args, stdout, stderr)
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	api := apiFlags(fs)
	limit := fs.Int("limit", 50, "how many of the newest dead letters (1 to 500)")
	pos, err := parse(fs, args, stderr, "AGGREGATE [--limit N] [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want the AGGREGATE type whose dead letters to read, got %d arguments", len(pos))
	}
	if *limit < 1 || *limit > 500 {
		return usageError(fs, stderr, "--limit %d: want 1 to 500", *limit)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	return api.call(ctx, http.MethodGet, "/v1/dlq/"+url.PathEscape(pos[0]), q, nil, stdout, stderr)
}

// parkedEvents is 'strata projection parked NAME'.
func parkedEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("projection parked", flag.ContinueOnError)
	api := apiFlags(fs)
	limit := fs.Int("limit", 50, "events per page (1 to 1000)")
	cursor := fs.String("cursor", "", "the next value of the previous page")
	pos, err := parse(fs, args, stderr, "NAME [--limit N] [--cursor C] [flags]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 {
		return usageError(fs, stderr, "want the projection's NAME")
	}
	if *limit < 1 || *limit > 1000 {
		return usageError(fs, stderr, "--limit %d: want 1 to 1000", *limit)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *cursor != "" {
		q.Set("cursor", *cursor)
	}
	return api.call(ctx, http.MethodGet, "/v1/projections/"+url.PathEscape(pos[0])+"/parked", q, nil, stdout, stderr)
}
