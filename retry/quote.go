package retry

import (
	"strconv"
	"unicode/utf8"
)

// MaxIDInError is the most bytes of an id [QuoteID] keeps: a legacy run id
// may be as long as the database accepts, and an error line must stay one
// readable line.
const MaxIDInError = 200

// QuoteID is an id (a run id above all) as an error message prints it:
// Go-quoted, so that no id (a legacy one may hold anything the database
// accepts: newlines, escape sequences) splits or recolours the line, and
// cut to its first [MaxIDInError] bytes at a UTF-8 boundary, with "..."
// after the quote when cut. Every store, the executor and the demo format
// ids into errors with it.
func QuoteID(id string) string {
	if len(id) <= MaxIDInError {
		return strconv.Quote(id)
	}
	n := MaxIDInError
	for n > 0 && !utf8.RuneStart(id[n]) {
		n--
	}
	return strconv.Quote(id[:n]) + "..."
}
