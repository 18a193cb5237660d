//go:build crashpoints

package crashpoint

import (
	"os"
	"syscall"
)

// Enabled reports whether this build honours BERTH_CRASH_AT.
const Enabled = true

// Hit kills the process with SIGKILL if BERTH_CRASH_AT names this step.
func Hit(name string) {
	if os.Getenv(EnvVar) == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; never go on past the step
	}
}
