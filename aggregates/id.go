package aggregates

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxIDLength is the longest aggregate or command ID, in bytes. IDs are Kafka
// keys and parts of Pebble keys and URLs; a bound keeps them cheap.
const MaxIDLength = 256

// CheckID reports whether id can name an aggregate or a command: 1 to
// MaxIDLength bytes of valid UTF-8 without control characters, '/', or a
// path segment of "." or "..".
func CheckID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("id is empty")
	case len(id) > MaxIDLength:
		return fmt.Errorf("id is %d bytes, longer than the limit of %d", len(id), MaxIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("id is not valid UTF-8")
	case id == "." || id == "..":
		return fmt.Errorf("id %q is not allowed", id)
	}
	for _, r := range id {
		if r == '/' {
			return fmt.Errorf("id %q contains '/'", id)
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("id %q contains a control character", id)
		}
	}
	return nil
}
