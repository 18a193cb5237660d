// Package bundle loads and validates OCI bundles: a directory holding a
// config.json and a root filesystem, and the process.json files given to
// "berth exec -p".
//
// Every error names the file, then the JSON field (or the argument) at
// fault, then the problem, for example
//
//	/run/b/config.json: process.rlimits[2].type: unknown rlimit "RLIMIT_FOO"
//
// so that the user knows exactly what to fix. Validation stops at the first
// problem: one precise error is more useful than a long list, and the code
// stays simple.
package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the name of the configuration file inside a bundle.
const ConfigName = "config.json"

// Bundle is a loaded, validated bundle.
type Bundle struct {
	Dir    string // absolute, cleaned bundle directory
	Rootfs string // absolute path of root.path (relative root.path is resolved against Dir)
	Spec   *specs.Spec
}

// Load reads dir/config.json, validates it and checks the parts of it that
// refer to the host filesystem: the root filesystem and the hook binaries.
// An empty dir means the current directory, as for runc's --bundle.
func Load(dir string) (*Bundle, error) {
	if dir == "" {
		dir = "."
	}
	// Lexically absolute and clean, like runc's bundle path. Symlinks are
	// deliberately left alone: the user should recognise the path we print.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := checkDir(abs); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", abs, err)
	}

	configPath := filepath.Join(abs, ConfigName)
	data, err := os.ReadFile(configPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &causeError{msg: fmt.Sprintf("bundle %s: %s not found", abs, ConfigName), cause: err}
		}
		return nil, fmt.Errorf("bundle %s: %w", abs, err)
	}
	spec, err := Parse(data, configPath)
	if err != nil {
		return nil, err
	}

	b := &Bundle{Dir: abs, Rootfs: resolveRootfs(abs, spec.Root.Path), Spec: spec}
	if err := b.checkFilesystem(); err != nil {
		return nil, fmt.Errorf("%s: %w", configPath, err)
	}
	return b, nil
}

// resolveRootfs makes root.path absolute. A relative root.path is relative
// to the bundle, not to the caller's working directory (runc chdirs into the
// bundle for the same reason).
func resolveRootfs(dir, root string) string {
	if filepath.IsAbs(root) {
		return filepath.Clean(root)
	}
	return filepath.Join(dir, root)
}

// checkFilesystem checks what Parse cannot: that the paths the configuration
// names on the host exist and are usable.
func (b *Bundle) checkFilesystem() error {
	if err := checkDir(b.Rootfs); err != nil {
		return fmt.Errorf("root.path: %s: %w", b.Rootfs, err)
	}
	if b.Spec.Hooks == nil {
		return nil
	}
	joinsMountNS := joinsNamespace(b.Spec, specs.MountNamespace)
	for _, list := range hookLists(b.Spec.Hooks) {
		switch {
		case list.name == "startContainer":
			// startContainer hooks run after pivot_root, so their path
			// resolves inside the container. Checking it against Rootfs
			// would be wrong as often as right: the binary is commonly
			// bind-mounted in by a mounts[] entry or created by an earlier
			// hook (this is how device-injection hooks work), and neither
			// exists yet. Parse has already checked the path is absolute;
			// anything more is left to run time.
			continue
		case list.name == "createContainer" && joinsMountNS:
			// createContainer hooks run in the container's mount
			// namespace but before pivot_root, so normally their path
			// resolves against the same "/" as the host's (the runtime
			// spec says they resolve in the runtime namespace, and runc
			// runs them from the pre-pivot root). When the container
			// joins an existing mount namespace that "/" is someone
			// else's, and the host tells us nothing.
			continue
		}
		for i, h := range list.hooks {
			if err := checkExecutable(h.Path); err != nil {
				return fmt.Errorf("hooks.%s[%d].path: %s: %w", list.name, i, h.Path, err)
			}
		}
	}
	return nil
}

// checkDir reports why path is not an existing directory. The error does not
// repeat the path; callers put it where it reads best.
func checkDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &causeError{msg: "no such directory", cause: err}
		}
		return unwrapPath(err)
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	return nil
}

// checkExecutable reports why path cannot be run as a hook. Symlinks are
// followed, as execve would. Any execute bit is accepted: which user ends up
// running the hook (and so which bit matters) is not known here.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return unwrapPath(err)
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// unwrapPath strips the *fs.PathError wrapper, whose text repeats the path
// and the operation, leaving e.g. "no such file or directory".
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// causeError carries its own message but still unwraps to the underlying
// cause, so callers can test errors.Is(err, fs.ErrNotExist) without the
// cause's wording cluttering what the user reads.
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.cause }
