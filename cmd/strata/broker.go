package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/strata-es/strata/internal/devbroker"
)

// runBroker runs only the embedded Kafka broker of `strata dev`, persisted
// under --data, until it is stopped. It is hidden: `strata soak` runs it
// as a child process so that it can kill and restart the broker, which
// keeps its records, offsets and transactions in --data across restarts.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	port := fs.Int("port", 9092, "port on 127.0.0.1 (0: any free port)")
	data := fs.String("data", "", "directory the broker persists its log in (empty: memory only)")
	pos, err := parse(fs, args, stderr, "--port N --data DIR")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		return usageError(fs, stderr, "unexpected argument %q", pos[0])
	}
	if *port < 0 || *port > 65535 {
		return usageError(fs, stderr, "--port %d: want 0 to 65535", *port)
	}
	cluster, addr, err := devbroker.Start(devbroker.Options{DataDir: *data, Port: *port})
	if err != nil {
		fmt.Fprintf(stderr, "strata broker: %v\n", err)
		return exitFailure
	}
	// The soak waits for this line.
	fmt.Fprintf(stdout, "strata broker: listening at %s\n", addr)
	<-ctx.Done()
	cluster.Close()
	fmt.Fprintln(stdout, "strata broker: stopped")
	return exitOK
}
