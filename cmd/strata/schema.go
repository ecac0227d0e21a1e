package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/strata-es/strata/internal/registry"
	"github.com/strata-es/strata/schemas"
	"github.com/twmb/franz-go/pkg/sr"
)

func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	subs := map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"check":    schemaCheck,
		"list":     schemaList,
		"diff":     schemaDiff,
		"register": schemaRegister,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(stderr, `Usage: strata schema COMMAND [flags]
  check                      check every subject's versions against its compatibility mode (exit 1 on a violation)
  list                       subjects, versions, fingerprints and modes
  diff SUBJECT V1 V2         what changed between two versions (SUBJECT like account/AccountOpened)
  register --schema-registry URL   register every version in a Confluent-compatible schema registry
Each takes --dir DIR to read .avsc files from DIR instead of those built into the binary.`)
		return exitUsage
	}
	return subs[args[0]](ctx, args[1:], stdout, stderr)
}

// catalogFlag adds --dir and returns a loader of the catalog. When it
// cannot load, the loader says why on stderr, naming each broken file, and
// returns nil and the exit code.
func catalogFlag(fs *flag.FlagSet) func(stderr io.Writer) (*schemas.Catalog, int) {
	dir := fs.String("dir", "", "read the .avsc files and compatibility.yaml from this directory (default: those built into the binary)")
	return func(stderr io.Writer) (*schemas.Catalog, int) {
		if *dir == "" {
			return schemas.Default(), exitOK
		}
		if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
			return nil, usageError(fs, stderr, "--dir %s: not a directory", *dir)
		}
		cat, err := schemas.Load(os.DirFS(*dir))
		if err != nil {
			fmt.Fprintf(stderr, "strata %s: the catalog in %s does not load:\n%v\n", fs.Name(), *dir, err)
			return nil, exitFailure
		}
		return cat, exitOK
	}
}

func schemaCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema check", flag.ContinueOnError)
	load := catalogFlag(fs)
	if _, err := parse(fs, args, stderr, "[--dir DIR]"); err != nil {
		return flagExit(err)
	}
	cat, code := load(stderr)
	if cat == nil {
		return code
	}
	var problems []string
	for _, t := range builtinTypes {
		if err := cat.Bind(t); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, v := range cat.Check(schemas.UpcastedBy(builtinTypes...)) {
		problems = append(problems, v.Error())
	}
	subjects, versions := 0, 0
	for _, s := range cat.Subjects() {
		subjects++
		versions += len(s.Versions)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "strata schema check: %d problem(s) in %d subjects, %d versions\n", len(problems), subjects, versions)
		return exitFailure
	}
	fmt.Fprintf(stdout, "strata schema check: %d subjects, %d versions: every version satisfies its compatibility mode\n", subjects, versions)
	return exitOK
}

func schemaList(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema list", flag.ContinueOnError)
	load := catalogFlag(fs)
	if _, err := parse(fs, args, stderr, "[--dir DIR]"); err != nil {
		return flagExit(err)
	}
	cat, code := load(stderr)
	if cat == nil {
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tVERSION\tFINGERPRINT (CRC-64-AVRO)\tMODE\tFILE")
	for _, s := range cat.Subjects() {
		for _, v := range s.Versions {
			fmt.Fprintf(tw, "%s\tv%d\t%016x\t%s\t%s\n", s, v.N, v.Fingerprint, cat.Mode(s.String()), v.File)
		}
	}
	if err := tw.Flush(); err != nil {
		return exitFailure
	}
	return exitOK
}

func schemaDiff(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema diff", flag.ContinueOnError)
	load := catalogFlag(fs)
	pos, err := parse(fs, args, stderr, "SUBJECT V1 V2 [--dir DIR]")
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 3 {
		return usageError(fs, stderr, "want SUBJECT V1 V2 (like account/AccountOpened 1 3), got %d arguments", len(pos))
	}
	cat, code := load(stderr)
	if cat == nil {
		return code
	}
	s, ok := cat.Subject(pos[0])
	if !ok {
		var names []string
		for _, s := range cat.Subjects() {
			names = append(names, s.String())
		}
		fmt.Fprintf(stderr, "strata schema diff: no subject %q (subjects: %s)\n", pos[0], strings.Join(names, ", "))
		return exitNotFound
	}
	var vs [2]*schemas.Version
	for i, a := range pos[1:] {
		n, err := strconv.Atoi(strings.TrimPrefix(a, "v"))
		if err != nil || n < 1 || n > len(s.Versions) {
			return usageError(fs, stderr, "version %q: %s has versions 1 to %d", a, s, len(s.Versions))
		}
		vs[i] = s.Versions[n-1]
	}
	fmt.Fprintf(stdout, "%s v%d (%s) → v%d (%s)\n", s, vs[0].N, vs[0].File, vs[1].N, vs[1].File)
	changes := schemas.Diff(vs[0].Schema, vs[1].Schema)
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "  no change to fields or types")
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, "  "+c)
	}
	verdict := func(problems []schemas.Problem) string {
		if len(problems) == 0 {
			return "yes"
		}
		var ps []string
		for _, p := range problems {
			ps = append(ps, p.String())
		}
		return "no: " + strings.Join(ps, "; ")
	}
	fmt.Fprintf(stdout, "v%d reads v%d data (backward): %s\n", vs[1].N, vs[0].N, verdict(schemas.CanRead(vs[1].Schema, vs[0].Schema)))
	fmt.Fprintf(stdout, "v%d reads v%d data (forward):  %s\n", vs[0].N, vs[1].N, verdict(schemas.CanRead(vs[0].Schema, vs[1].Schema)))
	return exitOK
}

func schemaRegister(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema register", flag.ContinueOnError)
	load := catalogFlag(fs)
	url := fs.String("schema-registry", envOr("STRATA_SCHEMA_REGISTRY", ""), "URL of the Confluent-compatible schema registry (env STRATA_SCHEMA_REGISTRY)")
	if _, err := parse(fs, args, stderr, "--schema-registry URL [--dir DIR]"); err != nil {
		return flagExit(err)
	}
	if *url == "" {
		return usageError(fs, stderr, "--schema-registry is required")
	}
	cat, code := load(stderr)
	if cat == nil {
		return code
	}
	cl, err := sr.NewClient(sr.URLs(*url))
	if err != nil {
		return usageError(fs, stderr, "--schema-registry %q: %v", *url, err)
	}
	_, regs, err := registry.Register(ctx, cl, cat, schemas.UpcastedBy(builtinTypes...))
	if err != nil {
		fmt.Fprintf(stderr, "strata schema register: %v\n", err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGISTRY SUBJECT\tFILE\tID\tREGISTRY VERSION\tCOMPATIBILITY")
	for _, r := range regs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.Subject, r.Version.File, r.ID, r.Previous, r.Level)
	}
	_ = tw.Flush()
	return exitOK
}
