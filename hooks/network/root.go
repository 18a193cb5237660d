package network

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/netcontract"
	"github.com/berth-runtime/berth/internal/nslock"
	"github.com/berth-runtime/berth/internal/statefile"
)

// DefaultRoot holds all network state unless RootEnv says otherwise.
const DefaultRoot = netcontract.DefaultRoot

// RootEnv moves the network state (netcontract).
const RootEnv = netcontract.RootEnv

// Root is the directory holding networks, leases, port reservations and
// container records.
func Root() string { return netcontract.Root(os.Getenv) }

// lockContainers: every setup and teardown holds it shared while it runs;
// Reconcile, network rm and prune hold it exclusive (lockExclusive). So Reconcile never restores the port map of a
// container that a teardown is removing, nor adds one that a setup is
// about to add (iptables would then hold it twice, and teardown remove
// one copy).
func (l Layout) lockContainers(how int) (unlock func(), err error) {
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return nil, fmt.Errorf("network root %s: %w", l.Root, err)
	}
	return statefile.Lock(l.containersLockFile(), how)
}

// lockExclusive takes the containers lock exclusive, then the root lock:
// for what changes or compares a network as a whole (network rm, prune,
// reload). A setup holds the containers lock shared from before it reads
// a network's definition until its record names the network, so the
// network cannot go from under it, and teardown holds it while it undoes
// a container.
func (l Layout) lockExclusive() (unlock func(), err error) {
	unlockContainers, err := l.lockContainers(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	unlockRoot, err := l.lock()
	if err != nil {
		unlockContainers()
		return nil, err
	}
	return func() { unlockRoot(); unlockContainers() }, nil
}

// linksLockName names the lock (package nslock) under which bridges are
// checked, made and marked, and checked and deleted. The root lock is one
// root's; this one is the network namespace's, which several roots may
// share: without it two roots could both find a bridge name free (or the
// other's bridge unmarked, half made) and both take it.
const linksLockName = "berth/links.lock"

// lockLinks takes the namespace's links lock. Order: the root lock, then
// this, then the firewall's.
func lockLinks() (unlock func(), err error) {
	return nslock.Acquire(linksLockName, 30*time.Second)
}

// Layout names the files under a root.
type Layout struct{ Root string }

func (l Layout) networksDir() string         { return filepath.Join(l.Root, "networks") }
func (l Layout) networkFile(n string) string { return filepath.Join(l.networksDir(), n+".json") }
func (l Layout) recordsDir() string          { return filepath.Join(l.Root, "containers") }
func (l Layout) recordFile(id string) string { return filepath.Join(l.recordsDir(), recordName(id)) }
func (l Layout) ipamDir(n string) string     { return filepath.Join(l.Root, "ipam", n) }
func (l Layout) portsDir() string            { return filepath.Join(l.Root, "ports") }
func (l Layout) lockFile() string            { return filepath.Join(l.Root, "lock") }
func (l Layout) containersLockFile() string  { return filepath.Join(l.Root, "containers.lock") }

// lock takes the root's exclusive lock: network definitions and the
// creation of bridges and their rules happen under it. Per-container work
// (leases, ports) has finer locks of its own.
func (l Layout) lock() (unlock func(), err error) {
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return nil, fmt.Errorf("network root %s: %w", l.Root, err)
	}
	return statefile.Lock(l.lockFile(), unix.LOCK_EX)
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
