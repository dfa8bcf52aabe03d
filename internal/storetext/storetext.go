// Package storetext holds the text rules of [retry.Store] (see the
// comment above [retry.StorableText]) as every store the module ships
// applies them: the Bun store and the in-memory store keep text alike.
package storetext

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/journeyretry/journeyretry/retry"
)

// Storable is s as every store keeps free text: NUL bytes and invalid
// UTF-8 (which PostgreSQL's text rejects) become U+FFFD.
func Storable(s string) string {
	if retry.StorableText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Truncate makes msg storable and cuts it to [retry.MaxErrorMessageLen]
// bytes at a UTF-8 boundary.
func Truncate(msg string) string {
	msg = Storable(msg)
	if len(msg) <= retry.MaxErrorMessageLen {
		return msg
	}
	cut := retry.MaxErrorMessageLen
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}

// CheckIDs rejects identifiers no database stores alike: fields holds name,
// value pairs, and a value must be valid UTF-8 without NUL. The error wraps
// [retry.ErrInvalidArgument] and names the field.
func CheckIDs(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if v := fields[i+1]; !retry.StorableText(v) {
			return fmt.Errorf("%s %q holds a NUL byte or invalid UTF-8: %w", fields[i], v, retry.ErrInvalidArgument)
		}
	}
	return nil
}

// CheckJSON rejects what a run's context cannot hold on every database:
// text that is not JSON, and the escape \u0000, which PostgreSQL's jsonb
// refuses. The error wraps [retry.ErrInvalidArgument] and names what.
func CheckJSON(what string, b []byte) error {
	if !json.Valid(b) {
		return fmt.Errorf("%s is not valid JSON: %w", what, retry.ErrInvalidArgument)
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' { // in valid JSON a backslash starts an escape
			continue
		}
		if i+5 < len(b) && b[i+1] == 'u' && string(b[i+2:i+6]) == "0000" {
			return fmt.Errorf("%s holds \\u0000, which PostgreSQL's jsonb cannot store: %w", what, retry.ErrInvalidArgument)
		}
		i++ // the escaped character
	}
	return nil
}
