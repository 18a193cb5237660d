package lifecycle

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// PrestartShimArg is the first argument with which berth runs as the shim
// of a prestart hook (`berth prestart-hook PATH ARGV...`). It is internal,
// like `berth init`.
const PrestartShimArg = "prestart-hook"

// selfExe names the running berth binary, even if the file has since been
// replaced; the prestart hooks run from the `create` that wraps them.
const selfExe = "/proc/self/exe"

// WrapPrestart makes every prestart hook in cfg run through berth's shim.
//
// libcontainer runs prestart hooks with the same state as createRuntime
// hooks, status "creating", but prestart hooks are the spec 1.0 hooks that
// run "after the start operation is called", and what they expect on stdin
// (and what the OCI runtime-tools suite checks) is status "created". Their
// timing stays libcontainer's: in `create`, after the namespaces exist and
// before pivot_root, where network set-up hooks need to run. The shim
// replaces only the status on stdin and then execs the hook in its place,
// so the hook keeps its pid, arguments, environment and timeout.
//
// The hook stays a CommandHook, which libcontainer can save with the
// container's configuration; a Go function hook could not be saved.
func WrapPrestart(cfg *configs.Config) {
	for i, h := range cfg.Hooks[configs.Prestart] {
		ch, ok := h.(configs.CommandHook)
		if !ok {
			continue
		}
		argv := ch.Args
		if len(argv) == 0 { // as exec.Cmd would run it
			argv = []string{ch.Path}
		}
		wrapped := *ch.Command
		wrapped.Path = selfExe
		wrapped.Args = append([]string{"berth", PrestartShimArg, ch.Path}, argv...)
		cfg.Hooks[configs.Prestart][i] = configs.NewCommandHook(&wrapped)
	}
}

// RunPrestartShim is the shim's body: args are the hook's path and argv.
// It reads the state from stdin, sets its status to "created", puts the
// result on stdin and execs the hook. It returns only on failure.
func RunPrestartShim(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%s: expected the hook's path and argv, got %q", PrestartShimArg, args)
	}
	path, argv := args[0], args[1:]
	state, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fmt.Errorf("prestart hook %s: read state: %w", path, err)
	}
	state, err = withStatus(state, specs.StateCreated)
	if err != nil {
		return fmt.Errorf("prestart hook %s: %w", path, err)
	}
	if err := replaceStdin(state); err != nil {
		return fmt.Errorf("prestart hook %s: %w", path, err)
	}
	if err := unix.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("prestart hook %s: exec: %w", path, err)
	}
	return nil
}

// withStatus returns the state JSON with its status replaced. The other
// fields are kept as they are, including any this berth does not know.
func withStatus(state []byte, status specs.ContainerState) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(state, &fields); err != nil {
		return nil, fmt.Errorf("state on stdin: %w", err)
	}
	v, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}
	fields["status"] = v
	return json.Marshal(fields)
}

// replaceStdin makes fd 0 a memfd holding data, positioned at its start. A
// memfd, not a pipe: it holds any amount without a writer that would have
// to outlive the exec.
func replaceStdin(data []byte) error {
	fd, err := unix.MemfdCreate("berth-hook-state", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-hook-state")
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind state: %w", err)
	}
	// dup3 without O_CLOEXEC: fd 0 must survive the exec.
	if err := unix.Dup3(int(f.Fd()), 0, 0); err != nil {
		return fmt.Errorf("dup state to stdin: %w", err)
	}
	return nil
}
