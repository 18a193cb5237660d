package network

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/internal/statefile"
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

// saveJSON replaces path with v as indented JSON, atomically: a crash
// leaves either the old content or the new. The temporary file goes beside
// path, in the directory gc sweeps with removeDebris. what names the file
// in errors ("network bridge", "record of ID").
func saveJSON(path, what string, v any) error {
	dir := filepath.Dir(path)
	data, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err == nil {
		err = statefile.Replace(dir, path, string(data))
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
