// Package combine is the one way the module combines errors: with
// github.com/hashicorp/go-multierror, the module's named dependency for
// it, formatted so that one error reads as itself. It is internal because
// package retry, which every backend imports, keeps to the standard
// library; a program of its own combines errors as it likes.
package combine

import (
	"github.com/hashicorp/go-multierror"

	"github.com/journeyretry/journeyretry/retry"
)

// Errors returns the non-nil errs as one *multierror.Error formatted by
// retry.FormatErrors (errors.Is and errors.As see each), or nil when there
// are none. A *multierror.Error among errs is flattened: a close after a
// failure, the fields a Validate rejects.
func Errors(errs ...error) error {
	return multierror.Append(&multierror.Error{ErrorFormat: retry.FormatErrors}, errs...).ErrorOrNil()
}
