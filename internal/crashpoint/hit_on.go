//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// Enabled reports whether this build honours BERTH_CRASH_AT.
const Enabled = true

// Hit kills the process with SIGKILL if BERTH_CRASH_AT names this step,
// and first its parent if BERTH_CRASH_PARENT is 1.
func Hit(name string) {
	if os.Getenv(TraceEnvVar) != "" {
		trace(name)
	}
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

// initTime and lastHit are the clock readings trace measures from.
var initTime = time.Now()
var lastHit = initTime

// trace prints the time since the previous point and since the package's
// init (which runs after the Go runtime has started): where a hook's time
// goes, step by step, in a real run. BERTH_CRASH_TRACE=1 prints on stderr;
// any other value is a file to append to (a runtime or a benchmark that
// runs the hook may keep its stderr).
func trace(name string) {
	now := time.Now()
	line := fmt.Sprintf("crashpoint %-28s +%7.3f ms  (%7.3f ms since init)\n",
		name, float64(now.Sub(lastHit).Microseconds())/1000, float64(now.Sub(initTime).Microseconds())/1000)
	lastHit = now
	if dest := os.Getenv(TraceEnvVar); dest != "1" {
		if f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			f.WriteString(line)
			f.Close()
			return
		}
	}
	os.Stderr.WriteString(line)
}
