// Package aggregatetest runs given/when/then scenario files against an
// aggregate type, so domain behaviour is written down as data.
//
// A scenario file holds scenarios like this one:
//
//	# Withdrawing more than the balance is rejected.
//	given
//	AccountOpened {"owner":"ada","initial_balance":1000}
//	when
//	Withdraw {"amount":2000}
//	then
//	rejected: insufficient funds: balance 1000, withdrawal 2000
//
// Lines under given are events (type, then JSON data), the line under when is
// one command, and the lines under then are what Decide returned: one event
// per line, or "rejected: …", "invalid: …", "error: …". Run the tests with
// -update to rewrite every then section from what the code does now, and
// review the diff.
package aggregatetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/aggregates"
)

var update = flag.Bool("update", false, "rewrite the then sections of scenario files")

// Now is the decision time passed to Decide in scenarios.
var Now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type scenario struct {
	title string
	given []string
	when  string
	then  []string
	line  int
}

// Run runs every scenario in the file at path against t.
func Run(t *testing.T, typ aggregates.Type, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	scs, err := parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(scs) == 0 {
		t.Fatalf("%s: no scenarios", path)
	}
	var out bytes.Buffer
	for i := range scs {
		sc := &scs[i]
		got, err := run(typ, sc)
		if err != nil {
			t.Errorf("%s:%d (%s): %v", path, sc.line, sc.title, err)
			got = sc.then
		}
		if !*update && strings.Join(got, "\n") != strings.Join(sc.then, "\n") {
			t.Errorf("%s:%d (%s):\nwant:\n  %s\ngot:\n  %s", path, sc.line, sc.title,
				strings.Join(sc.then, "\n  "), strings.Join(got, "\n  "))
		}
		sc.then = got
		if i > 0 {
			out.WriteString("\n")
		}
		format(&out, sc)
	}
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func parse(data []byte) ([]scenario, error) {
	var scs []scenario
	var cur *scenario
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#"):
			scs = append(scs, scenario{title: strings.TrimSpace(line[1:]), line: n})
			cur, section = &scs[len(scs)-1], ""
			continue
		case cur == nil:
			return nil, fmt.Errorf("line %d: a scenario starts with a '# title' line", n)
		case line == "given" || line == "when" || line == "then":
			section = line
			continue
		}
		switch section {
		case "given":
			cur.given = append(cur.given, line)
		case "when":
			if cur.when != "" {
				return nil, fmt.Errorf("line %d: one command per scenario", n)
			}
			cur.when = line
		case "then":
			cur.then = append(cur.then, line)
		default:
			return nil, fmt.Errorf("line %d: %q outside given/when/then", n, line)
		}
	}
	for _, s := range scs {
		if s.when == "" {
			return nil, fmt.Errorf("line %d: scenario %q has no when", s.line, s.title)
		}
	}
	return scs, sc.Err()
}

func format(w *bytes.Buffer, sc *scenario) {
	fmt.Fprintf(w, "# %s\n", sc.title)
	if len(sc.given) > 0 {
		fmt.Fprintf(w, "given\n%s\n", strings.Join(sc.given, "\n"))
	}
	fmt.Fprintf(w, "when\n%s\nthen\n", sc.when)
	for _, l := range sc.then {
		fmt.Fprintln(w, l)
	}
}

func run(typ aggregates.Type, sc *scenario) ([]string, error) {
	state := typ.NewState()
	for _, l := range sc.given {
		name, data, _ := strings.Cut(l, " ")
		ev, ok := typ.NewEvent(name)
		if !ok {
			return nil, fmt.Errorf("unknown event type %q", name)
		}
		if err := strictJSON(data, ev); err != nil {
			return nil, fmt.Errorf("event %s: %w", name, err)
		}
		state = typ.Evolve(state, ev.(aggregates.Event))
	}
	name, data, _ := strings.Cut(sc.when, " ")
	cmd, ok := typ.NewCommand(name)
	if !ok {
		return []string{"invalid: unknown command type " + name}, nil
	}
	if err := strictJSON(data, cmd); err != nil {
		return []string{"invalid: " + err.Error()}, nil
	}
	events, err := typ.Decide(state, cmd.(aggregates.Command), Now)
	switch {
	case errors.Is(err, aggregates.ErrRejected):
		return []string{"rejected: " + err.Error()}, nil
	case errors.Is(err, aggregates.ErrInvalid):
		return []string{"invalid: " + err.Error()}, nil
	case err != nil:
		return []string{"error: " + err.Error()}, nil
	}
	var out []string
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, ev.EventType()+" "+string(b))
		// Evolve every emitted event, so a scenario also proves Evolve
		// accepts what Decide produces.
		state = typ.Evolve(state, ev)
	}
	if len(out) == 0 {
		out = []string{"no events"}
	}
	return out, nil
}

func strictJSON(data string, v any) error {
	if strings.TrimSpace(data) == "" {
		data = "{}"
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
