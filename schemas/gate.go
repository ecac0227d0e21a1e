package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/strata-es/strata/internal/yamlerr"
	"go.yaml.in/yaml/v3"
)

// Mode is a compatibility mode, as schema registries name them.
type Mode string

// The modes. BACKWARD: a new version reads data written with the previous
// one (consumers upgrade first... and new code replays old events).
// FORWARD: the previous version reads data written with the new one (old
// consumers survive new events during a rolling upgrade). FULL: both.
// _TRANSITIVE: against every earlier version, not only the previous.
// NONE: no check.
const (
	Backward           Mode = "BACKWARD"
	BackwardTransitive Mode = "BACKWARD_TRANSITIVE"
	Forward            Mode = "FORWARD"
	ForwardTransitive  Mode = "FORWARD_TRANSITIVE"
	Full               Mode = "FULL"
	FullTransitive     Mode = "FULL_TRANSITIVE"
	None               Mode = "NONE"
)

// DefaultMode is the mode of subjects the compatibility file does not name:
// events are kept forever and read by consumers of every age.
const DefaultMode = FullTransitive

// ModesFile is the name of the compatibility file in the catalog.
const ModesFile = "compatibility.yaml"

func (m Mode) valid() bool {
	switch m {
	case Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None:
		return true
	}
	return false
}

func (m Mode) backward() bool {
	return strings.HasPrefix(string(m), "BACKWARD") || strings.HasPrefix(string(m), "FULL")
}
func (m Mode) forward() bool {
	return strings.HasPrefix(string(m), "FORWARD") || strings.HasPrefix(string(m), "FULL")
}
func (m Mode) transitive() bool { return strings.HasSuffix(string(m), "_TRANSITIVE") }

// modesFile is compatibility.yaml.
type modesFile struct {
	Default  Mode            `yaml:"default"`
	Subjects map[string]Mode `yaml:"subjects"`
}

// loadModes reads compatibility.yaml from fsys, if it exists. Each problem
// names the file and its line.
func loadModes(fsys fs.FS, subjects map[string]*Subject) (Mode, map[string]Mode, []error) {
	data, err := fs.ReadFile(fsys, ModesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultMode, nil, nil
	}
	if err != nil {
		return DefaultMode, nil, []error{fmt.Errorf("%s: %w", ModesFile, err)}
	}
	if err := yamlerr.CheckUTF8(ModesFile, data); err != nil {
		return DefaultMode, nil, []error{err}
	}
	var f modesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return DefaultMode, nil, []error{yamlerr.Wrap(ModesFile, data, err)}
	}
	// The lines of the settings, for the problems below: the file
	// decoded, so it parses.
	lines := map[string]int{}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) == nil && len(root.Content) == 1 {
		top := root.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			lines[top.Content[i].Value] = top.Content[i].Line
			if top.Content[i].Value == "subjects" {
				subs := top.Content[i+1]
				for j := 0; j+1 < len(subs.Content); j += 2 {
					lines["subjects/"+subs.Content[j].Value] = subs.Content[j].Line
				}
			}
		}
	}
	at := func(key string) string {
		if n := lines[key]; n > 0 {
			return fmt.Sprintf("%s, line %d", ModesFile, n)
		}
		return ModesFile
	}
	var problems []error
	if f.Default == "" {
		f.Default = DefaultMode
	}
	if !f.Default.valid() {
		problems = append(problems, fmt.Errorf("%s: default %q is not a mode (BACKWARD, FORWARD, FULL, each also _TRANSITIVE, or NONE)", at("default"), f.Default))
	}
	for _, s := range sortedKeys(f.Subjects) {
		m := f.Subjects[s]
		if !m.valid() {
			problems = append(problems, fmt.Errorf("%s: subject %s: %q is not a mode (BACKWARD, FORWARD, FULL, each also _TRANSITIVE, or NONE)", at("subjects/"+s), s, m))
		}
		if _, ok := subjects[s]; !ok {
			problems = append(problems, fmt.Errorf("%s: subject %s has no .avsc files (want schemas/%s.v1.avsc)", at("subjects/"+s), s, s))
		}
	}
	return f.Default, f.Subjects, problems
}

func sortedKeys(m map[string]Mode) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Mode returns a subject's compatibility mode.
func (c *Catalog) Mode(subject string) Mode {
	if m, ok := c.modes[subject]; ok {
		return m
	}
	return c.defaultMode
}

// Violation is one pair of versions of a subject that breaks its mode.
type Violation struct {
	Subject  string
	Mode     Mode
	Later    *Version // the newer version, the one the change made
	Earlier  *Version
	Forward  bool // the earlier version cannot read the later (else the later cannot read the earlier)
	Problems []Problem
}

func (v Violation) Error() string {
	var sb strings.Builder
	if v.Forward {
		fmt.Fprintf(&sb, "%s breaks %s: readers on v%d (%s) cannot read what v%d writes:", v.Later.File, v.Mode, v.Earlier.N, v.Earlier.File, v.Later.N)
	} else {
		fmt.Fprintf(&sb, "%s breaks %s: v%d cannot read what v%d (%s) wrote:", v.Later.File, v.Mode, v.Later.N, v.Earlier.N, v.Earlier.File)
	}
	for _, p := range v.Problems {
		sb.WriteString("\n    ")
		sb.WriteString(describe(p, v))
	}
	return sb.String()
}

// describe says what the change did, in the terms of the change (added,
// removed, narrowed) rather than of the reader and writer.
func describe(p Problem, v Violation) string {
	at := p.Path
	if at == "" {
		at = "(top level)"
	}
	var what string
	switch {
	case p.Kind == FieldMissing && !v.Forward:
		what = fmt.Sprintf("field added without a default, so v%d data cannot be read", v.Earlier.N)
	case p.Kind == FieldMissing && v.Forward:
		what = fmt.Sprintf("field removed (or renamed), and it has no default in v%d", v.Earlier.N)
	case p.Kind == TypeMismatch && !v.Forward:
		what = "type changed in a way that is not a promotion (int→long→float→double, string↔bytes)"
	case p.Kind == TypeMismatch && v.Forward:
		what = "type widened or changed: older readers cannot narrow it back"
	case p.Kind == SymbolMissing && !v.Forward:
		what = "enum symbol removed, and the enum has no default"
	case p.Kind == SymbolMissing && v.Forward:
		what = fmt.Sprintf("enum symbol added, and the enum has no default in v%d", v.Earlier.N)
	case p.Kind == NameMismatch:
		what = "named type renamed without an alias to its old name"
	case p.Kind == SizeMismatch:
		what = "fixed size changed"
	case p.Kind == BranchMissing && !v.Forward:
		what = "union branch removed"
	case p.Kind == BranchMissing && v.Forward:
		what = "union branch added that older readers do not have"
	}
	return fmt.Sprintf("%s: %s (%s)", at, what, p.Detail)
}

// Exempt says whether reading version from of subject is done by an
// upcaster chain rather than schema resolution; such pairs are not checked.
type Exempt func(subject string, fromVersion int) bool

// Check checks every subject's versions against its mode and returns every
// violation, sorted by subject and version. Pairs of versions with an
// upcaster between them (exempt reports one for a version in
// [earlier, later)) are skipped: the upcaster, not resolution, reads them.
func (c *Catalog) Check(exempt Exempt) []Violation {
	var out []Violation
	for _, s := range c.Subjects() {
		mode := c.Mode(s.String())
		if mode == None {
			continue
		}
		for j := 1; j < len(s.Versions); j++ {
			later := s.Versions[j]
			first := j - 1
			if mode.transitive() {
				first = 0
			}
			for i := first; i < j; i++ {
				earlier := s.Versions[i]
				if upcasted(exempt, s.String(), earlier.N, later.N) {
					continue
				}
				if mode.backward() {
					if ps := CanRead(later.Schema, earlier.Schema); len(ps) > 0 {
						out = append(out, Violation{Subject: s.String(), Mode: mode, Later: later, Earlier: earlier, Problems: ps})
					}
				}
				if mode.forward() {
					if ps := CanRead(earlier.Schema, later.Schema); len(ps) > 0 {
						out = append(out, Violation{Subject: s.String(), Mode: mode, Later: later, Earlier: earlier, Forward: true, Problems: ps})
					}
				}
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Subject != out[b].Subject {
			return out[a].Subject < out[b].Subject
		}
		return out[a].Later.N < out[b].Later.N
	})
	return out
}

func upcasted(exempt Exempt, subject string, from, to int) bool {
	if exempt == nil {
		return false
	}
	for k := from; k < to; k++ {
		if exempt(subject, k) {
			return true
		}
	}
	return false
}
