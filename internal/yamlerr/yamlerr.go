// Package yamlerr turns the errors of go.yaml.in/yaml/v3 into errors that
// name the file and the line of each problem, for the files Strata reads
// (its config file, the schemas' compatibility.yaml).
//
// The library prints the line of a syntax error counted from 1 for its
// scanner's problems and from 0 for its parser's (decode.go adds 1 for
// scanner errors only), prints no line for a problem on the first line or
// for its reader's problems, and puts every decoding problem of a file in
// one multi-line error. Wrap puts the right line back for the problems it
// knows, listed here from the library's sources, and returns one error per
// problem.
package yamlerr

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

var (
	parserProblems = map[string]bool{
		"did not find expected ',' or ']'":       true,
		"did not find expected ',' or '}'":       true,
		"did not find expected '-' indicator":    true,
		"did not find expected <document start>": true,
		"did not find expected <stream-start>":   true,
		"did not find expected key":              true,
		"did not find expected node content":     true,
		"found duplicate %TAG directive":         true,
		"found duplicate %YAML directive":        true,
		"found incompatible YAML document":       true,
		"found undefined tag handle":             true,
	}
	scannerProblems = map[string]bool{
		"block sequence entries are not allowed in this context":       true,
		"could not find expected ':'":                                  true,
		"could not find expected directive name":                       true,
		"did not find expected alphabetic or numeric character":        true,
		"did not find expected comment or line break":                  true,
		"did not find expected digit or '.' character":                 true,
		"did not find expected hexdecimal number":                      true,
		"did not find expected version number":                         true,
		"did not find expected whitespace or line break":               true,
		"did not find expected whitespace":                             true,
		"did not find the expected '>'":                                true,
		"did not find URI escaped octet":                               true,
		"found a tab character that violates indentation":              true,
		"found a tab character where an indentation space is expected": true,
		"found an indentation indicator equal to 0":                    true,
		"found character that cannot start any token":                  true,
		"found extremely long version number":                          true,
		"found invalid Unicode character escape code":                  true,
		"found unexpected document indicator":                          true,
		"found unexpected end of stream":                               true,
		"found unexpected non-alphabetical character":                  true,
		"found unknown directive name":                                 true,
		"found unknown escape character":                               true,
		"mapping keys are not allowed in this context":                 true,
		"mapping values are not allowed in this context":               true,
	}
	readerProblems = map[string]bool{
		"control characters are not allowed": true,
		"invalid Unicode character":          true,
	}
	lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// CheckUTF8 returns an error naming where data is not UTF-8 (which the
// library would report without a place), or nil. name is how errors start:
// "config strata.yaml", "compatibility.yaml".
func CheckUTF8(name string, data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	off := 0
	for off < len(data) {
		r, n := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		off += n
	}
	line, col := position(data, off)
	return fmt.Errorf("%s, line %d, column %d: not valid UTF-8", name, line, col)
}

// Wrap returns err, an error of decoding data, as one error per problem,
// each starting with name and, where it can be known, the line:
// "config strata.yaml, line 3: did not find expected key".
func Wrap(name string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) {
		// Decoding problems come from nodes, whose lines are right.
		var problems []error
		for _, p := range te.Errors {
			problems = append(problems, located(name, p))
		}
		return errors.Join(problems...)
	}
	line, problem := 0, msg
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		problem = m[2]
	}
	switch {
	case parserProblems[problem]:
		line++
	case scannerProblems[problem] || strings.HasPrefix(problem, "exceeded max depth of "):
		line = max(line, 1)
	case readerProblems[problem]:
		// Said by byte offset only, and not in the message.
		if i := bytes.IndexFunc(data, notYAMLChar); i >= 0 {
			l, col := position(data, i)
			return fmt.Errorf("%s, line %d, column %d: %s", name, l, col, problem)
		}
		return fmt.Errorf("%s: %s", name, problem)
	default:
		// Anything else (an unknown anchor, excessive aliasing) comes
		// with its line or without one.
		return located(name, msg)
	}
	return fmt.Errorf("%s, line %d: %s", name, line, problem)
}

// located returns "name, line N: rest" for a message "line N: rest", and
// "name: msg" for any other, on one line: a value quoted in the message may
// hold newlines.
func located(name, msg string) error {
	msg = strings.ReplaceAll(msg, "\n", `\n`)
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s, line %s: %s", name, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", name, msg)
}

// notYAMLChar reports the characters YAML 1.1 does not allow in a stream:
// C0 controls but tab, LF and CR; DEL; C1 controls but NEL; surrogates,
// U+FFFE and U+FFFF.
func notYAMLChar(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r == 0x85:
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f, r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return true
	}
	return false
}

// position returns the line and column (from 1, in bytes) of offset off.
func position(data []byte, off int) (line, col int) {
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	return line, off - bytes.LastIndexByte(data[:off], '\n')
}
