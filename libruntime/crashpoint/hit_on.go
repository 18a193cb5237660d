//go:build crashpoints

package crashpoint

import (
	"os"
	"syscall"
)

// Enabled reports whether this build honours BERTH_CRASH_AT.
const Enabled = true

// Hit kills the process with SIGKILL if BERTH_CRASH_AT names this step,
// and first its parent if BERTH_CRASH_PARENT is 1.
func Hit(name string) {
	if os.Getenv(EnvVar) != name {
		return
	}
	if os.Getenv(ParentEnvVar) == "1" {
		if ppid := os.Getppid(); ppid > 1 {
			_ = syscall.Kill(ppid, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; never go on past the step
}
