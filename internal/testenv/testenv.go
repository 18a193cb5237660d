// Package testenv lets a test say that its environment lacks something it
// needs (a tool, root, a variable). On a developer's machine that is a
// skip, with the reason. Under CI=true (set by CI systems, and by
// scripts/test.sh, which installs every tool first) it is a failure: there
// a missing tool means the machine is not what the tests need, and a skip
// would let a whole suite pass without running.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Missing skips t, or fails it under CI=true, saying what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: a missing requirement is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

// InCI reports whether the tests run under CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }
