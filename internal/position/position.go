// Package position is the position token: which events offsets a command's
// result covers, so that a read can wait until a view has applied them
// (read-your-writes).
//
// A token is opaque to clients: base64url of "topic:partition:offset"
// entries joined by commas. An entry means "the event at this offset"; a
// view has applied it once its next offset for that partition is beyond it.
package position

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// TP names a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Position maps topic partitions to the offset of the last event covered.
type Position map[TP]int64

// MaxTokenLength bounds a token read from outside.
const MaxTokenLength = 4096

// ErrBadToken is returned for a token that does not parse.
var ErrBadToken = errors.New("strata: bad position token")

// Merge raises p to include q, keeping the larger offset per partition.
func (p Position) Merge(q Position) {
	for tp, o := range q {
		if cur, ok := p[tp]; !ok || o > cur {
			p[tp] = o
		}
	}
}

// Token encodes p. The empty position encodes as "".
func (p Position) Token() string {
	if len(p) == 0 {
		return ""
	}
	tps := slices.SortedFunc(maps.Keys(p), func(a, b TP) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	var sb strings.Builder
	for i, tp := range tps {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(tp.Topic)
		sb.WriteByte(':')
		sb.WriteString(strconv.FormatInt(int64(tp.Partition), 10))
		sb.WriteByte(':')
		sb.WriteString(strconv.FormatInt(p[tp], 10))
	}
	return base64.RawURLEncoding.EncodeToString([]byte(sb.String()))
}

// Parse decodes a token made by Token.
func Parse(token string) (Position, error) {
	if token == "" {
		return Position{}, nil
	}
	if len(token) > MaxTokenLength {
		return nil, fmt.Errorf("%w: %d bytes, longer than %d", ErrBadToken, len(token), MaxTokenLength)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url: use the position string of a command result as is", ErrBadToken)
	}
	p := Position{}
	for _, e := range strings.Split(string(raw), ",") {
		i := strings.LastIndexByte(e, ':')
		j := -1
		if i > 0 {
			j = strings.LastIndexByte(e[:i], ':')
		}
		if j <= 0 {
			return nil, fmt.Errorf("%w: entry %q is not topic:partition:offset", ErrBadToken, e)
		}
		part, err1 := strconv.ParseInt(e[j+1:i], 10, 32)
		off, err2 := strconv.ParseInt(e[i+1:], 10, 64)
		if err1 != nil || err2 != nil || part < 0 || off < 0 {
			return nil, fmt.Errorf("%w: entry %q has a bad partition or offset", ErrBadToken, e)
		}
		p[TP{e[:j], int32(part)}] = off
	}
	return p, nil
}
