// Package schemas holds Strata's versioned Avro schemas and the catalog that
// loads, fingerprints and resolves them.
//
// Files live at <dir>/<Name>.v<N>.avsc: <dir> is an aggregate type (its
// commands, events and state.v<N>.avsc for snapshots) or "views". Each
// <dir>/<Name> is a subject; its versions are numbered from 1 without gaps.
// Every version is identified on the wire by the CRC-64-AVRO fingerprint of
// its Parsing Canonical Form, in Avro single-object encoding. Writers use a
// subject's newest version; readers accept any known version and resolve it
// into the newest (Avro schema resolution).
//
// # Usage
//
//	cat := schemas.Default()               // the files embedded in the binary
//	b, err := cat.Encode("account/MoneyDeposited", account.Deposited{Amount: 5})
//	v, payload, err := cat.Parse(b)        // which subject and version wrote it
//	err = cat.Decode(v, payload, &ev)      // resolved into the newest version
package schemas

import (
	"bytes"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/soe"
)

//go:embed */*.avsc compatibility.yaml
var embedded embed.FS

// Namespace prefixes every record's namespace: strata.<dir>.
const Namespace = "strata"

// Version is one .avsc file.
type Version struct {
	Subject     *Subject
	N           int    // 1, 2, …
	File        string // path inside the catalog's file system
	Text        string // the file's text, as written (docs, defaults, aliases)
	Schema      avro.Schema
	Fingerprint uint64 // CRC-64-AVRO of the Parsing Canonical Form

	// read is the schema to decode this version's bytes with into the
	// subject's newest version: the writer schema resolved against the
	// newest one, or the newest itself. readErr says why there is none:
	// then only an upcaster can read this version (see Codec).
	read    avro.Schema
	readErr error
}

// Subject is the sequence of versions of one record: <dir>/<Name>.
type Subject struct {
	Dir, Name string
	Versions  []*Version // by N, Versions[i].N == i+1
}

// String returns "<dir>/<Name>".
func (s *Subject) String() string { return s.Dir + "/" + s.Name }

// Latest returns the newest version, the one writers use.
func (s *Subject) Latest() *Version { return s.Versions[len(s.Versions)-1] }

// Catalog is a loaded, checked set of subjects. It is immutable and safe for
// concurrent use.
type Catalog struct {
	subjects    map[string]*Subject
	byFP        map[uint64]*Version
	api         avro.API
	defaultMode Mode
	modes       map[string]Mode

	registry      *Registry // nil: single-object encoding only
	writeRegistry bool

	// writers holds *avro.Writer configured with api, for EncodeVersion:
	// it frames the body straight from a pooled buffer, where Marshal
	// would copy the body out once and framing would copy it again.
	writers *sync.Pool
}

// Limits on decoding outside bytes, so a hostile length prefix cannot make a
// decoder allocate gigabytes: no Strata record is near them.
const (
	maxByteSlice  = 4 << 20
	maxSliceAlloc = 1 << 20
)

var fileRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)\.v([1-9][0-9]*)\.avsc$`)

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
	defaultErr  error
)

// Default returns the catalog of the files embedded in the binary. It panics
// if they do not load: that is a build defect, caught by this package's
// tests.
func Default() *Catalog {
	defaultOnce.Do(func() { defaultCat, defaultErr = Load(embedded) })
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultCat
}

// Load reads every <dir>/<Name>.v<N>.avsc in fsys and checks names,
// numbering and that each older version resolves into the newest. It
// reports every problem at once, each naming its file.
func Load(fsys fs.FS) (*Catalog, error) {
	api := avro.Config{
		TagKey:            "avro",
		MaxByteSliceSize:  maxByteSlice,
		MaxSliceAllocSize: maxSliceAlloc,
	}.Freeze()
	c := &Catalog{
		subjects: map[string]*Subject{},
		byFP:     map[uint64]*Version{},
		api:      api,
		writers: &sync.Pool{New: func() any {
			return avro.NewWriter(nil, 512, avro.WithWriterConfig(api))
		}},
	}
	files, err := fs.Glob(fsys, "*/*.avsc")
	if err != nil {
		return nil, err
	}
	var problems []error
	for _, f := range files {
		dir, base := path.Split(f)
		dir = strings.TrimSuffix(dir, "/")
		m := fileRE.FindStringSubmatch(base)
		if m == nil {
			problems = append(problems, fmt.Errorf("%s: file name must be <Name>.v<N>.avsc with N from 1", f))
			continue
		}
		n, _ := strconv.Atoi(m[2])
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", f, err))
			continue
		}
		// hamba reads a file that is not JSON as a type name, and says
		// "unknown type" followed by the whole file: say where instead.
		if where, err := jsonSyntax(data); err != nil {
			if where != "" {
				f += ", " + where
			}
			problems = append(problems, fmt.Errorf("%s: %w", f, err))
			continue
		}
		sch, err := parseSchema(data)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: not a valid Avro schema: %s", f, oneLine(err)))
			continue
		}
		rec, ok := sch.(*avro.RecordSchema)
		if !ok {
			problems = append(problems, fmt.Errorf("%s: top-level type must be a record, is %s", f, sch.Type()))
			continue
		}
		wantName := Namespace + "." + dir + "." + recordName(m[1])
		if rec.FullName() != wantName {
			problems = append(problems, fmt.Errorf("%s: record full name is %q, want %q (namespace %q, name %q)",
				f, rec.FullName(), wantName, Namespace+"."+dir, recordName(m[1])))
			continue
		}
		fp, err := soe.ComputeFingerprint(sch)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: fingerprint: %s", f, oneLine(err)))
			continue
		}
		key := dir + "/" + m[1]
		s := c.subjects[key]
		if s == nil {
			s = &Subject{Dir: dir, Name: m[1]}
			c.subjects[key] = s
		}
		v := &Version{Subject: s, N: n, File: f, Text: string(data), Schema: sch, Fingerprint: binary.LittleEndian.Uint64(fp)}
		s.Versions = append(s.Versions, v)
	}
	for _, key := range sortedSubjects(c.subjects) {
		s := c.subjects[key]
		sort.Slice(s.Versions, func(i, j int) bool { return s.Versions[i].N < s.Versions[j].N })
		for i, v := range s.Versions {
			if v.N != i+1 {
				problems = append(problems, fmt.Errorf("%s: version %d follows version %d: versions of %s must be numbered 1, 2, … without gaps or duplicates", v.File, v.N, i, s))
				break
			}
		}
		latest := s.Latest()
		for _, v := range s.Versions {
			if other, dup := c.byFP[v.Fingerprint]; dup {
				problems = append(problems, fmt.Errorf("%s: same canonical schema as %s: a new version must change the schema", v.File, other.File))
				continue
			}
			c.byFP[v.Fingerprint] = v
			if v == latest {
				v.read = v.Schema
				continue
			}
			// A fresh SchemaCompatibility each time: one instance caches
			// verdicts by canonical form, which ignores defaults and
			// aliases (shared/MEASURED.md).
			r, err := avro.NewSchemaCompatibility().Resolve(latest.Schema, v.Schema)
			if err != nil {
				v.readErr = fmt.Errorf("%s cannot be read as %s: %w", v.File, latest.File, err)
				continue
			}
			v.read = r
		}
	}
	var modeProblems []error
	c.defaultMode, c.modes, modeProblems = loadModes(fsys, c.subjects)
	problems = append(problems, modeProblems...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return c, nil
}

// jsonSyntax returns why data is not one JSON value in UTF-8, with where
// ("line 3, column 7"), or nil.
func jsonSyntax(data []byte) (where string, err error) {
	at := func(off int) string {
		b := data[:min(max(off, 0), len(data))]
		return fmt.Sprintf("line %d, column %d", 1+bytes.Count(b, []byte("\n")), len(b)-bytes.LastIndexByte(b, '\n'))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", errors.New("the file is empty: want an Avro schema, in JSON")
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			off += n
		}
		return at(off), errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		off := len(data) // io.ErrUnexpectedEOF: at the end
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = int(se.Offset) - 1 // the offset after the byte at fault
		}
		return at(off), fmt.Errorf("not valid JSON: %v", err)
	}
	if off := int(dec.InputOffset()); dec.More() || len(bytes.TrimSpace(data[off:])) > 0 {
		off += len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n"))
		return at(off), errors.New("not valid JSON: data after the schema")
	}
	return "", nil
}

// oneLine joins the lines of a multi-line error of hamba/avro (its
// mapstructure errors are), so that each problem of Load is one line
// naming its file.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// recordName maps a file's Name to its record name: state.v1.avsc holds the
// record State.
func recordName(name string) string {
	if name == "state" {
		return "State"
	}
	return name
}

func sortedSubjects(m map[string]*Subject) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Subjects returns every subject, sorted by name.
func (c *Catalog) Subjects() []*Subject {
	var out []*Subject
	for _, k := range sortedSubjects(c.subjects) {
		out = append(out, c.subjects[k])
	}
	return out
}

// Subject returns the subject "<dir>/<Name>".
func (c *Catalog) Subject(name string) (*Subject, bool) {
	s, ok := c.subjects[name]
	return s, ok
}

// Errors returned by Parse and Decode.
var (
	ErrNotSingleObject    = errors.New("strata: not Avro single-object encoding")
	ErrUnknownFingerprint = errors.New("strata: unknown schema fingerprint")
	ErrUnexpectedSubject  = errors.New("strata: unexpected schema subject")
	ErrUnknownSubject     = errors.New("strata: unknown schema subject")
)

// Encode writes v with subject's newest version in single-object encoding:
// 0xC3 0x01, the 8-byte little-endian fingerprint, the Avro binary body.
func (c *Catalog) Encode(subject string, v any) ([]byte, error) {
	s, ok := c.subjects[subject]
	if !ok {
		// The error holds a copy so that subject does not escape: callers
		// concatenate it on every call (codec.EncodeEvent), and a
		// concatenation that does not escape is built on the stack.
		name := strings.Clone(subject)
		return nil, fmt.Errorf("encode: %w %q (add schemas/%s.v1.avsc)", ErrUnknownSubject, name, name)
	}
	return c.EncodeVersion(s.Latest(), v)
}

// EncodeVersion writes v with version ver, newest or not; tests use it to
// produce the bytes an older release wrote.
func (c *Catalog) EncodeVersion(ver *Version, v any) ([]byte, error) {
	w := c.writers.Get().(*avro.Writer)
	defer func() {
		w.Error = nil
		c.writers.Put(w)
	}()
	w.Reset(nil)
	w.WriteVal(ver.Schema, v)
	if w.Error != nil {
		return nil, fmt.Errorf("encode %s: %w", ver.File, w.Error)
	}
	out, err := c.frame(ver, w.Buffered())
	if err != nil {
		return nil, err
	}
	return append(out, w.Buffer()...), nil
}

// EncodeBody writes v with version ver as a bare Avro body, without any
// header.
func (c *Catalog) EncodeBody(ver *Version, v any) ([]byte, error) {
	b, err := c.api.Marshal(ver.Schema, v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ver.File, err)
	}
	return b, nil
}

// Parse reads the single-object header of data (or, with a registry, the
// registry's wire-format header) and returns the version that wrote it and
// the Avro body.
func (c *Catalog) Parse(data []byte) (*Version, []byte, error) {
	if c.registry != nil && len(data) >= 5 && data[0] == 0 {
		ver, err := c.versionOfID(int(binary.BigEndian.Uint32(data[1:5])))
		if err != nil {
			return nil, nil, err
		}
		return ver, data[5:], nil
	}
	if len(data) < 10 || data[0] != soe.Magic[0] || data[1] != soe.Magic[1] {
		n := min(len(data), 2)
		return nil, nil, fmt.Errorf("%w: want magic c3 01, got % x (%d bytes)", ErrNotSingleObject, data[:n], len(data))
	}
	fp := binary.LittleEndian.Uint64(data[2:10])
	v, ok := c.byFP[fp]
	if !ok {
		return nil, nil, fmt.Errorf("%w %016x: written with a schema this build does not know (a newer release, or another producer)", ErrUnknownFingerprint, fp)
	}
	return v, data[10:], nil
}

// Decode reads body, written with version ver, into v, a pointer to the Go
// type of the subject's newest version. A body that does not follow its
// schema to the last byte (cut short, with bytes after it, with counts or
// indexes out of range) is an error wrapping ErrMalformed.
func (c *Catalog) Decode(ver *Version, body []byte, v any) error {
	return c.decode(ver, body, v, false)
}

// DecodeInput is Decode for what comes from outside, commands: it also
// refuses strings that are not UTF-8, as the Avro specification wants
// them. Stored events are read with Decode, which lets such strings
// through: an event written before this check must not stop a partition.
func (c *Catalog) DecodeInput(ver *Version, body []byte, v any) error {
	return c.decode(ver, body, v, true)
}

func (c *Catalog) decode(ver *Version, body []byte, v any, text bool) error {
	if ver.readErr != nil {
		return fmt.Errorf("decode: %w: it needs an upcaster", ver.readErr)
	}
	if err := checkBody(ver.Schema, body, text); err != nil {
		return fmt.Errorf("decode %s (fingerprint %016x): %w", ver.File, ver.Fingerprint, err)
	}
	if err := c.api.Unmarshal(ver.read, body, v); err != nil {
		return fmt.Errorf("decode %s (fingerprint %016x): %w", ver.File, ver.Fingerprint, err)
	}
	return nil
}

// DecodeGeneric reads body, written with version ver, with ver's own
// schema into generic values (records as map[string]any): what upcasters
// work on. It checks body as Decode does.
func (c *Catalog) DecodeGeneric(ver *Version, body []byte) (map[string]any, error) {
	if err := checkBody(ver.Schema, body, false); err != nil {
		return nil, fmt.Errorf("decode %s (fingerprint %016x): %w", ver.File, ver.Fingerprint, err)
	}
	var m map[string]any
	if err := c.api.Unmarshal(ver.Schema, body, &m); err != nil {
		return nil, fmt.Errorf("decode %s (fingerprint %016x): %w", ver.File, ver.Fingerprint, err)
	}
	return m, nil
}

// Readable returns why version ver cannot be resolved into its subject's
// newest version, or nil.
func (ver *Version) Readable() error { return ver.readErr }

// DecodeSubject parses data, checks it was written by a version of subject,
// and decodes it into v.
func (c *Catalog) DecodeSubject(subject string, data []byte, v any) (*Version, error) {
	ver, body, err := c.Parse(data)
	if err != nil {
		return nil, err
	}
	if ver.Subject.String() != subject {
		// A copy, so that subject does not escape (see Encode).
		return ver, fmt.Errorf("%w: want %s, got %s", ErrUnexpectedSubject, strings.Clone(subject), ver.File)
	}
	return ver, c.Decode(ver, body, v)
}
