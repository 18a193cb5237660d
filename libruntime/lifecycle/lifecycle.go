// Package lifecycle holds the parts of the runtime-spec lifecycle that berth
// runs itself rather than leaving to libcontainer, where libcontainer's
// order differs from the spec:
//
//   - poststart hooks: libcontainer runs them at the end of `create`, before
//     the user's program runs; the spec wants them after `start` has run it
//     (lifecycle step 9). berth keeps them out of libcontainer's config,
//     stores them in the state directory and runs them from `start`/`run`.
//   - poststop hooks: berth runs them after destroy, all of them, and a
//     failure is a warning, not a failed `delete` (step 13).
//   - prestart hooks: libcontainer hands them the state with status
//     "creating"; berth runs each through a shim that makes it "created"
//     (see WrapPrestart).
//   - a failing startContainer hook kills the container's init after `start`
//     has already been told all is well; berth watches for that and reports
//     it as the error the spec requires (step 7).
package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/internal/process"
	"github.com/berth-runtime/berth/internal/statefile"
)

// deferredHooksFile lives in the container's state directory, beside
// libcontainer's state.json, and goes with it on destroy.
const deferredHooksFile = "berth-hooks.json"

// Deferred are the hooks berth runs itself instead of libcontainer.
//   - poststart: libcontainer would run them at the end of `create`.
//   - poststop: libcontainer runs them inside Destroy and returns their
//     error, which would make `delete` fail; the spec says a failing
//     poststop hook is only a warning (lifecycle step 13).
type Deferred struct {
	Poststart []configs.CommandHook `json:"poststart,omitempty"`
	Poststop  []configs.CommandHook `json:"poststop,omitempty"`
	// AddressSpace is the init's RLIMIT_AS, held back from libcontainer
	// (aslimit.Defer), which `start` sets on the init as it waits on the
	// exec fifo.
	AddressSpace *configs.Rlimit `json:"addressSpace,omitempty"`
}

// TakeDeferred removes the hooks berth runs itself from cfg and returns
// them.
func TakeDeferred(cfg *configs.Config) Deferred {
	take := func(name configs.HookName) []configs.CommandHook {
		var out []configs.CommandHook
		for _, h := range cfg.Hooks[name] {
			if ch, ok := h.(configs.CommandHook); ok {
				out = append(out, ch)
			}
		}
		delete(cfg.Hooks, name)
		return out
	}
	return Deferred{Poststart: take(configs.Poststart), Poststop: take(configs.Poststop)}
}

// Save records the hooks in the state directory for later commands.
func (d Deferred) Save(stateDir string) error {
	if len(d.Poststart) == 0 && len(d.Poststop) == 0 && d.AddressSpace == nil {
		return nil
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("save hooks: %w", err)
	}
	// Atomic: `delete -f` cannot recover a container whose hooks file a
	// crash left empty.
	if err := statefile.WriteFile(filepath.Join(stateDir, deferredHooksFile), data, 0o600, "create.hooks.temp"); err != nil {
		return fmt.Errorf("save hooks: %w", err)
	}
	return nil
}

// LoadDeferred reads the hooks Save recorded, if any.
func LoadDeferred(stateDir string) (Deferred, error) {
	var d Deferred
	data, err := os.ReadFile(filepath.Join(stateDir, deferredHooksFile))
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("load hooks: %w", err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return d, fmt.Errorf("load hooks: %w", err)
	}
	return d, nil
}

// runEach runs every hook of a list in order, with s on its stdin, and
// returns the failures. Unlike libcontainer's Hooks.Run it does not stop at
// the first failure: for poststop hooks the spec says "the remaining hooks
// and lifecycle continue as if the hook had succeeded", and a poststart
// hook that fails should not keep the ones after it (which may, say,
// register the container somewhere) from running either.
func runEach(name configs.HookName, hooks []configs.CommandHook, s *specs.State) []error {
	var errs []error
	for i, h := range hooks {
		if err := h.Run(s); err != nil {
			// libcontainer's (and so runc's) wording for the hooks it
			// runs itself, which scripts match; then the hook's path.
			errs = append(errs, fmt.Errorf("error running %s hook #%d: %s: %w", name, i, h.Path, err))
		}
	}
	return errs
}

// RunPoststart runs all the poststart hooks with the container's state,
// now "running", on their stdin. If any failed it returns their errors:
// runtime-spec 1.3 (lifecycle step 9) says the runtime "MUST generate an
// error, stop the container, and continue the lifecycle at step 12", which
// the caller does. (Spec 1.0 made it a warning; the OCI runtime-tools
// v0.9.0 poststart_fail test still checks that.)
func RunPoststart(c *libcontainer.Container, d Deferred) error {
	if len(d.Poststart) == 0 {
		return nil
	}
	s, err := c.OCIState()
	if err != nil {
		return fmt.Errorf("poststart hooks: %w", err)
	}
	// The hooks run in the "running" step of the lifecycle (step 9), with
	// the process's pid, even if a short-lived program has already exited
	// by the time they start: they are told about the start that happened.
	if s.Status == specs.StateStopped {
		s.Status = specs.StateRunning
		if st, err := c.State(); err == nil {
			s.Pid = st.InitProcessPid
		}
	}
	return errors.Join(runEach(configs.Poststart, d.Poststart, s)...)
}

// Destroy removes a stopped container (cgroups, state) and then runs its
// poststop hooks, whose failure is logged as a warning.
func Destroy(c *libcontainer.Container, d Deferred) error {
	s, stateErr := c.OCIState()
	if err := c.Destroy(); err != nil {
		return err
	}
	crashpoint.Hit("delete.destroyed")
	if len(d.Poststop) == 0 {
		return nil
	}
	if stateErr != nil {
		logrus.Warnf("poststop hooks of %s not run: %v", c.ID(), stateErr)
		return nil
	}
	s.Status = specs.StateStopped
	s.Pid = 0
	for _, err := range runEach(configs.Poststop, d.Poststop, s) {
		logrus.Warnf("container %s: %v", c.ID(), err)
	}
	return nil
}

// ErrExitedBeforeExec is WaitExecuted's answer, under ExitIsError, for a
// process that was gone before it had exec'd its program.
var ErrExitedBeforeExec = errors.New("exited before it exec'd its program")

// ErrStillInit is WaitExecuted's answer for a process that was still in
// libcontainer's init code when the wait's limit ran out.
var ErrStillInit = errors.New("still in the runtime's init")

// ExitBeforeExec tells WaitExecuted what a process that is gone before it
// exec'd its program means to the caller.
type ExitBeforeExec bool

const (
	// ExitEndsWait: the wait is over. The program may well have run and
	// exited already (a short-lived program is gone before the first
	// look), and the caller only needs to know it is no longer in the init.
	ExitEndsWait ExitBeforeExec = false
	// ExitIsError: the init died in libcontainer's code, as it does when a
	// startContainer hook fails after `start` has been released.
	ExitIsError ExitBeforeExec = true
)

// WaitExecuted waits until the process pid has left libcontainer's init
// code and exec'd its program, for at most limit (zero: no limit). It
// returns ErrStillInit if the limit ran out first and, under ExitIsError,
// ErrExitedBeforeExec if the process was gone first.
//
// libcontainer returns a moment before the exec: the init closes its sync
// pipe (or passes the exec fifo) just before execve, and startContainer
// hooks still run in between. Callers wait for the program before they
// report its pid (whose comm, exe and cmdline a caller inspecting /proc/PID
// at once expects to be the program's), run the poststart hooks, or set a
// limit the init itself must not have. The poll starts at 50 µs, as the
// exec usually follows within a millisecond, and doubles up to 5 ms, which
// keeps a long wait (hooks) cheap.
func WaitExecuted(pid int, limit time.Duration, onExit ExitBeforeExec) error {
	deadline := time.Now().Add(limit)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) != process.InitComm {
			return nil // exec'd; perhaps exited since, a zombie keeps its comm
		}
		if err != nil || !process.Alive(pid) {
			if onExit == ExitIsError {
				return fmt.Errorf("process %d: %w", pid, ErrExitedBeforeExec)
			}
			return nil
		}
		if limit > 0 && time.Now().After(deadline) {
			return fmt.Errorf("process %d: %w after %s", pid, ErrStillInit, limit)
		}
		time.Sleep(delay)
	}
}

// StartContainerTimeout is how long to wait (WaitExecuted) for the
// container's startContainer hooks: the sum of the hooks' own timeouts, or
// zero (no limit) if any hook has none. ok is false without such hooks.
func StartContainerTimeout(cfg configs.Config) (time.Duration, bool) {
	list := cfg.Hooks[configs.StartContainer]
	if len(list) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, h := range list {
		ch, ok := h.(configs.CommandHook)
		if !ok || ch.Timeout == nil {
			return 0, true
		}
		total += *ch.Timeout
	}
	return total + time.Second, true
}
