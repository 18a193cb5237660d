package errdefs

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestKinds(t *testing.T) {
	base := fmt.Errorf("network %q does not exist: %w", "x", os.ErrNotExist)
	err := fmt.Errorf("setup: %w", NotFound(base))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("%v: not ErrNotFound", err)
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrInUse) || errors.Is(err, ErrAlreadyExists) {
		t.Errorf("%v: has another kind too", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%v: the wrapped error's own chain is lost", err)
	}
	if got, want := err.Error(), `setup: network "x" does not exist: file does not exist`; got != want {
		t.Errorf("Error() = %q, want %q: the kind must add no text", got, want)
	}
	for kind, f := range map[error]func(error) error{ErrAlreadyExists: AlreadyExists, ErrInUse: InUse, ErrConflict: Conflict} {
		if e := f(errors.New("x")); !errors.Is(e, kind) || e.Error() != "x" {
			t.Errorf("%v: kind %v lost or text changed", e, kind)
		}
	}
}
