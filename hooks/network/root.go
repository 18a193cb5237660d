package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/internal/statefile"
	"github.com/berth-runtime/berth/libruntime/crashpoint"
)

// DefaultRoot holds all network state unless BERTH_NET_ROOT says otherwise.
const DefaultRoot = "/run/berth/net"

// RootEnv moves the network state, for berth-net, `berth spec` and
// `berth network` alike, so tests and users can keep separate worlds.
const RootEnv = "BERTH_NET_ROOT"

// Root is the directory holding networks, leases, port reservations and
// container records.
func Root() string {
	if r := os.Getenv(RootEnv); r != "" {
		return r
	}
	return DefaultRoot
}

// Layout names the files under a root.
type Layout struct{ Root string }

func (l Layout) networksDir() string         { return filepath.Join(l.Root, "networks") }
func (l Layout) networkFile(n string) string { return filepath.Join(l.networksDir(), n+".json") }
func (l Layout) recordsDir() string          { return filepath.Join(l.Root, "containers") }
func (l Layout) recordFile(id string) string { return filepath.Join(l.recordsDir(), id+".json") }
func (l Layout) ipamDir(n string) string     { return filepath.Join(l.Root, "ipam", n) }
func (l Layout) portsDir() string            { return filepath.Join(l.Root, "ports") }
func (l Layout) lockFile() string            { return filepath.Join(l.Root, "lock") }

// lock takes the root's exclusive lock: network definitions and the
// creation of bridges and their rules happen under it. Per-container work
// (leases, ports) has finer locks of its own.
func (l Layout) lock() (unlock func(), err error) {
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return nil, fmt.Errorf("network root %s: %w", l.Root, err)
	}
	return statefile.Lock(l.lockFile(), unix.LOCK_EX)
}

// checkName refuses names that would escape the directory they name a
// file in, or that do not fit where they are used.
func checkName(what, name string, maxLen int) error {
	return checkChars(what, name, maxLen, "")
}

// maxContainerID is berth's limit on container ids (libruntime/state).
const maxContainerID = 1024

// checkContainerID accepts what the runtime accepts as a container id
// (runc's set: letters, digits, '_', '+', '-', '.'): a container that
// berth creates must not fail in its network hook for its id alone.
func checkContainerID(id string) error {
	return checkChars("container id", id, maxContainerID, "+")
}

// checkChars is checkName allowing the characters in extra as well.
func checkChars(what, name string, maxLen int, extra string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: must not be empty", what)
	case len(name) > maxLen:
		return fmt.Errorf("%s %.64q...: longer than %d bytes", what, name, maxLen)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q: not a valid name", what, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%s %q: must not contain '/' or NUL", what, name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' ||
			strings.ContainsRune(extra, c)
		if !ok {
			allowed := "letters, digits, '_', '-', '.'"
			for _, e := range extra {
				allowed += fmt.Sprintf(", '%c'", e)
			}
			return fmt.Errorf("%s %q: character %q not allowed (use %s)", what, name, c, allowed)
		}
	}
	return nil
}

// maxNetworkName bounds network names: they become file names, nft chain
// names and iptables comments.
const maxNetworkName = 64

// checkNetworkName is checkName for the name of a new network, which must
// also begin with a letter or a digit: the firewall refuses other names in
// its chain names and comments (so such a network would fail at its first
// container), and a leading '.' would hide its definition file.
func checkNetworkName(name string) error {
	if err := checkName("network name", name, maxNetworkName); err != nil {
		return err
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return fmt.Errorf("network name %q: must begin with a letter or a digit", name)
	}
	return nil
}

// writeFileAtomic replaces path with data, never leaving a torn file: a
// crash leaves either the old content or the new. The new content is
// written to a temporary file beside path, named after the writing
// process (tempPrefix), then renamed over path; a crash between the two
// leaves that file, which gc removes once its writer is dead.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix()+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(data) // no fsync: see statefile.WriteTemp
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		crashpoint.Hit("net.state.temp")
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// processAlive reports whether pid names a process that still runs. A
// zombie does not: a writer killed after its parent (berth, killed too)
// waits as one until the host's init reaps it, which may take a while.
func processAlive(pid int) bool {
	if unix.Kill(pid, 0) == unix.ESRCH {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	i := strings.LastIndexByte(string(data), ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}

// tempPrefix begins the names of writeFileAtomic's temporary files:
// new-PID-. Neither records nor definitions end up read from such a name
// (they end in .json), and the pid tells gc whether the writer is alive.
func tempPrefix() string { return "new-" + strconv.Itoa(os.Getpid()) + "-" }

// removeDebris removes the temporary files of writeFileAtomic in dir whose
// writer no longer runs, and returns their paths. A file whose writer's
// pid is in use again stays until a later gc: harmless, never wrong.
func removeDebris(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "new-")
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := removeIfExists(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// saveJSON writes v as indented JSON to path with writeFileAtomic; what
// names the file in errors ("network bridge", "record of ID").
func saveJSON(path, what string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = writeFileAtomic(path, data)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", what, err)
	}
	return nil
}

// loadJSON reads the JSON file path into v; a missing file is
// os.ErrNotExist, unwrapped, and a damaged one an error naming what.
func loadJSON(path, what string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: corrupt %s: %w", what, path, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
