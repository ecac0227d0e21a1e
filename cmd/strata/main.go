// Command strata is the one binary of Strata: it runs the platform (dev,
// serve) and talks to a running one (send, get, events, view).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first Ctrl-C (or SIGTERM) stops gracefully; a second one, with
	// the signals' default action back, ends the process at once. Strata's
	// state survives that as it survives a crash.
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // the operation failed or was refused
	exitUsage    = 2 // bad command line
	exitNotFound = 3
)

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"dev", "[flags]", "run everything in one process on an embedded Kafka broker", runDev},
		{"serve", "--brokers HOST:PORT,... [flags]", "run against a Kafka cluster", runServe},
		{"send", "AGGREGATE ID TYPE [DATA-JSON] [flags]", "send a command and print its result", runSend},
		{"get", "AGGREGATE ID [--version N | --as-of RFC3339]", "print an aggregate's state", runGet},
		{"events", "AGGREGATE ID [--from N]", "print an aggregate's history", runEvents},
		{"view", "VIEW KEY | VIEW --index I --eq V [--order desc] [--after-last]", "print a row of a view, or query it", runView},
		{"aggregates", "[AGGREGATE] [--prefix P] [--limit N] [--cursor C]", "list the aggregate types, or a type's IDs by prefix, a page at a time", runAggregates},
		{"views", "[--http URL]", "list the views, the aggregates they read and their indexes", runViews},
		{"dlq", "AGGREGATE [--limit N]", "print the newest dead letters of an aggregate type, with their reasons", runDLQ},
		{"projection", "status | retry NAME | rebuild NAME | parked NAME", "the projections' progress (offsets, lag, rate, state, parked), replaying parked events, blue/green rebuilds, the parked events", runProjection},
		{"schema", "check|list|diff|register [flags]", "the schema catalog: the compatibility gate, versions, diffs, registry", runSchema},
		{"bench", "[--brokers …] [--scenario restore] [--json]", "measure Strata on a broker (embedded by default)", runBench},
		{"status", "[--http URL]", "print the processors' and projections' status (partitions owned, stopped, why)", runStatus},
		{"health", "[--http URL]", "exit 0 when a running Strata answers /healthz (container healthchecks)", runHealth},
		{"soak", "[--duration 60s] [--instances 2] [--brokers …] [flags]", "chaos test: strata serve processes under load, killed, paused and cut off from a restarted broker; checks no command was lost or applied twice", runSoak},
	}
}

// hiddenCommands run but are not listed: helpers other commands start as
// child processes.
func hiddenCommands() []command {
	return []command{
		{"broker", "--port N --data DIR", "run only the embedded Kafka broker (strata soak restarts it)", runBroker},
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range append(commands(), hiddenCommands()...) {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "strata: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "strata: event sourcing and CQRS on Apache Kafka")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  strata %s %s\n      %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'strata COMMAND --help' for a command's flags.")
}
