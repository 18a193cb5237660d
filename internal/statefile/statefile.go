// Package statefile keeps berth's and berth-net's state files safe under
// crashes and concurrent runs: every berth and berth-net is its own
// short-lived process, so all shared state is files, changed under
// flock(2), written so that a crash leaves either the old content or the
// new.
package statefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/internal/names"
	"github.com/berth-runtime/berth/internal/process"
)

// CheckOwner refuses owner ids that are not container ids (internal/names):
// the leases and port reservations of a container are files named by its
// id, and must take every id that berth takes, and nothing that would not
// be a single, ordinary path element.
func CheckOwner(owner string) error { return names.ContainerID(owner) }

// Lock takes a flock(2) on path (created if missing) and returns the
// function that drops it. flock rather than an in-process mutex because
// every berth-net run is its own process; and flock rather than fcntl
// locks because fcntl locks are per process, so two goroutines of one
// process (or two Pools on one directory) would not exclude each other.
func Lock(path string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	// Closing the only descriptor of the open file releases the lock.
	return func() { f.Close() }, nil
}

// WriteTemp writes content to a new file in tmpDir, so that whatever name
// it is given next already holds all of its content. The file's name
// carries the writer's pid (tempPrefix), so that RemoveDebris can tell a
// crashed writer's file from one about to be renamed.
//
// Nothing here calls fsync. The state lives under /run: it describes
// kernel objects (links, rules, leases of running containers) that a
// reboot takes away, and gc clears whatever a power cut would leave. What
// it must survive is a process killed at any instruction, and for that the
// order of write, link, rename and unlink is enough: every process sees
// the page cache, not the disk. An fsync of a file and its directory per
// write cost 5-15 ms a setup on an ext4 /run (bench/README.md).
func WriteTemp(tmpDir, content string) (string, error) {
	f, err := os.CreateTemp(tmpDir, tempPrefix()+"*")
	if err != nil {
		return "", fmt.Errorf("temporary file: %w", err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// CreateExclusive creates path with content, failing with an error that
// matches os.ErrExist if path exists. It links a complete temporary file
// into place instead of writing path itself: link(2) fails if the name
// exists, as O_CREAT|O_EXCL would, but the name only ever appears with its
// full content, so a crash cannot leave an empty file that looks valid.
func CreateExclusive(tmpDir, path, content string) error {
	tmp, err := WriteTemp(tmpDir, content)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Link(tmp, path)
}

// Replace atomically sets the content of path, creating it if needed:
// readers see either the old or the new content, never a mix.
func Replace(tmpDir, path, content string) error {
	tmp, err := WriteTemp(tmpDir, content)
	if err != nil {
		return err
	}
	// The crash matrix kills berth-net here: the first file a setup
	// replaces is the container's record, so the crash leaves its
	// temporary file in the records directory for gc to find.
	crashpoint.Hit("net.state.temp")
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Remove removes path if it exists.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ClearTempDir empties tmpDir, a directory of temporary files only. The
// caller holds the exclusive lock that every writer into tmpDir holds
// while its temporary file exists, so whatever it finds, whoever wrote
// it, was left by a writer that crashed.
func ClearTempDir(tmpDir string) error {
	entries, err := os.ReadDir(tmpDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := Remove(filepath.Join(tmpDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// RemoveDebris removes the temporary files in dir (WriteTemp's) whose
// writer no longer runs, and returns their paths. It is for directories
// whose writers the caller does not exclude, such as those where
// temporary files are written beside the files they replace: a live
// writer's file is about to be renamed, and removing it would fail that
// write. Every other name is left alone, as is a dead writer's file whose
// pid is in use again, until a later sweep: harmless, never wrong. A
// missing dir holds no debris.
func RemoveDebris(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		pid, ok := tempWriter(e.Name())
		// process.Alive counts a zombie as dead: a writer killed after its
		// parent (berth, killed too) waits as one until the host's init
		// reaps it, which may take a while.
		if !ok || process.Alive(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := Remove(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// tempPrefix begins the names of this process's temporary files: new-PID-,
// to which os.CreateTemp appends a random decimal number. The pid tells
// RemoveDebris whether the writer still runs.
func tempPrefix() string { return "new-" + strconv.Itoa(os.Getpid()) + "-" }

// tempWriter returns the pid of the writer of temporary file name, and
// false if name is not shaped new-PID-DIGITS as tempPrefix and
// os.CreateTemp make them. The shape is checked in full because temporary
// files may share a directory with other files: the record of a container
// with the id new-5-x is new-5-x.json, not pid 5's temporary file.
func tempWriter(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "new-")
	if !ok {
		return 0, false
	}
	pidText, random, ok := strings.Cut(rest, "-")
	if !ok || !isDigits(pidText) || !isDigits(random) {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
