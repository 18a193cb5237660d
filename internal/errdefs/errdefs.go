// Package errdefs gives berth-net's errors a kind that callers and tests
// can match with errors.Is, as containerd's errdefs does, instead of
// matching words of the message. A kinded error reads exactly as the error
// it wraps: the kind adds no text.
package errdefs

import "errors"

// The kinds.
var (
	ErrNotFound      = errors.New("not found")      // no such network, container or object
	ErrAlreadyExists = errors.New("already exists") // defining again what is defined
	ErrInUse         = errors.New("in use")         // removing what something still uses
	ErrConflict      = errors.New("conflict")       // taking what another owner holds (a host port, a bridge name)
)

// NotFound, AlreadyExists, InUse and Conflict give err its kind.
func NotFound(err error) error      { return kinded{ErrNotFound, err} }
func AlreadyExists(err error) error { return kinded{ErrAlreadyExists, err} }
func InUse(err error) error         { return kinded{ErrInUse, err} }
func Conflict(err error) error      { return kinded{ErrConflict, err} }

type kinded struct{ kind, err error }

func (k kinded) Error() string   { return k.err.Error() }
func (k kinded) Unwrap() []error { return []error{k.kind, k.err} }
