// Package ports keeps the host ports published by containers, so that no
// host port is published by two containers, nor over a port a host program
// is listening on. berth has no daemon: reservations live in files, and
// every berth-net run that reads or changes them holds a flock.
//
// The registry directory is a statefile.Store, whose doc gives the layout
// and the crash-safety rules; the registry keeps in it:
//
//	<proto>/<port>/<hostIP>    the claims: one file per reserved host port and
//	                           address, the wildcard written as 0.0.0.0; content: the owner id
//	owners/<owner>             the owner's index: JSON array of its mappings
//
// By the Store's rules Release always finds every port file an owner may
// have; an index may name mappings whose files a crash kept from being
// written, and those are simply not held (Held leaves them out, Release
// skips them).
package ports

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/errdefs"

	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/internal/statefile"
)

// wildcardName names the file of a reservation on every host address.
const wildcardName = "0.0.0.0"

// Registry records which container holds which published host ports.
type Registry struct {
	store *statefile.Store
	dir   string
}

// Open opens the registry kept in dir, creating it (mode 0700) if missing.
func Open(dir string) (*Registry, error) {
	store, err := statefile.OpenStore(dir, "ports")
	if err != nil {
		return nil, err
	}
	return &Registry{store: store, dir: dir}, nil
}

// Reserve records that owner holds every mapping in ms, all or nothing,
// under one flock. It fails, naming the port, if a mapping clashes with
// another owner's reservation (same protocol and port, on the same host
// address or where either side is the wildcard), or if a program on this
// host already uses the port, which it finds by binding a socket to the
// host address and port in the current network namespace.
//
// Reserving again what owner already holds succeeds without probing: the
// port may by then be in use on purpose, for the owner. Reserving a
// different set while holding one fails; Release first.
func (r *Registry) Reserve(owner string, ms []portspec.Mapping) error {
	if err := statefile.CheckOwner(owner); err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	ms, err := normalize(ms)
	if err != nil {
		return fmt.Errorf("ports: reserve for %s: %w", owner, err)
	}
	unlock, err := r.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()

	held, indexed, err := r.readIndex(owner)
	if err != nil {
		return err
	}
	if indexed && !sameMappings(held, ms) {
		return fmt.Errorf("ports: %s already holds host ports %v; release them before reserving %v", owner, held, ms)
	}
	if len(ms) == 0 {
		return nil
	}

	// Check everything before changing anything, so a clash on the last
	// mapping leaves no trace of the first.
	var todo []portspec.Mapping
	for _, m := range ms {
		ours, err := r.checkFree(owner, m)
		if err != nil {
			return err
		}
		if ours {
			continue
		}
		if err := probeHostPort(m); err != nil {
			return err
		}
		todo = append(todo, m)
	}
	if len(todo) == 0 {
		return nil
	}

	if !indexed {
		if err := r.writeIndex(owner, ms); err != nil {
			return err
		}
		// A crash here leaves an index naming ports none of whose files
		// were written: Release must still find and drop it.
		crashpoint.Hit("net.setup.ports-index")
	}
	var done []portspec.Mapping
	for _, m := range todo {
		err := r.createPortFile(owner, m)
		if err == nil {
			done = append(done, m)
			continue
		}
		// Undo, to keep all or nothing even when the disk fails us.
		for _, d := range done {
			statefile.Remove(r.portFile(d))
			os.Remove(r.portDir(d))
		}
		if !indexed {
			r.store.RemoveIndex(owner)
		}
		return err
	}
	return nil
}

// Release gives up every host port owner holds. Releasing an owner that
// holds nothing is not an error, so teardown can run more than once.
func (r *Registry) Release(owner string) error {
	if err := statefile.CheckOwner(owner); err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	unlock, err := r.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()

	held, indexed, err := r.readIndex(owner)
	if err != nil || !indexed {
		return err
	}
	for _, m := range held {
		holder, ok, err := r.readPortFile(m)
		if err != nil {
			return err
		}
		// A mapping whose file a crash kept from being written may since
		// have been reserved by someone else; that is not ours to release.
		if !ok || holder != owner {
			continue
		}
		if err := statefile.Remove(r.portFile(m)); err != nil {
			return fmt.Errorf("ports: release host port %s of %s: %w", describe(m), owner, err)
		}
		// Keep the tree from filling with empty port directories; one
		// that is not empty holds another address's reservation.
		os.Remove(r.portDir(m))
	}
	// Only now, with the port files gone, may the index go (see package doc).
	if err := r.store.RemoveIndex(owner); err != nil {
		return err
	}
	return nil
}

// Held returns, for every owner with an index, the mappings it holds. An
// owner whose index names mappings that a crash kept from being reserved
// is listed with the ones it does hold, possibly none, so that gc still
// sees it and can Release it.
func (r *Registry) Held() (map[string][]portspec.Mapping, error) {
	unlock, err := r.lock(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()

	owners, err := r.store.Owners()
	if err != nil {
		return nil, err
	}
	held := make(map[string][]portspec.Mapping, len(owners))
	for _, owner := range owners {
		ms, indexed, err := r.readIndex(owner)
		if err != nil {
			return nil, err
		}
		if !indexed {
			continue
		}
		really, err := r.reallyHeld(owner, ms)
		if err != nil {
			return nil, err
		}
		held[owner] = really
	}
	return held, nil
}

// HeldBy returns the mappings owner holds now: those of its index whose
// port files name it. Teardown unpublishes only these, because a mapping
// that setup never got to reserve may be another container's, and
// removing its forwarding rule would cut that container off.
func (r *Registry) HeldBy(owner string) ([]portspec.Mapping, error) {
	if err := statefile.CheckOwner(owner); err != nil {
		return nil, fmt.Errorf("ports: %w", err)
	}
	unlock, err := r.lock(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ms, indexed, err := r.readIndex(owner)
	if err != nil || !indexed {
		return nil, err
	}
	return r.reallyHeld(owner, ms)
}

func (r *Registry) reallyHeld(owner string, ms []portspec.Mapping) ([]portspec.Mapping, error) {
	var really []portspec.Mapping
	for _, m := range ms {
		holder, ok, err := r.readPortFile(m)
		if err != nil {
			return nil, err
		}
		if ok && holder == owner {
			really = append(really, m)
		}
	}
	return really, nil
}

// checkFree reports whether m is already reserved by owner (ours) and
// fails if another owner holds a reservation overlapping it.
func (r *Registry) checkFree(owner string, m portspec.Mapping) (ours bool, err error) {
	entries, err := os.ReadDir(r.portDir(m))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ports: check host port %s: %w", describe(m), err)
	}
	for _, e := range entries {
		ip, ok := parseAddrName(e.Name())
		if !ok || !overlaps(ip, m.HostIP) {
			continue
		}
		other := m
		other.HostIP = ip
		holder, ok, err := r.readPortFile(other)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		if holder == owner && ip == m.HostIP {
			ours = true
			continue
		}
		return false, errdefs.Conflict(fmt.Errorf("ports: host port %s is already published by container %s", describe(m), holder))
	}
	return ours, nil
}

func (r *Registry) createPortFile(owner string, m portspec.Mapping) error {
	if err := os.MkdirAll(r.portDir(m), 0o700); err != nil {
		return fmt.Errorf("ports: reserve host port %s for %s: %w", describe(m), owner, err)
	}
	if err := r.store.Claim(r.portFile(m), owner); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Only a writer ignoring the lock could have got here first.
			return fmt.Errorf("ports: host port %s was reserved meanwhile", describe(m))
		}
		return fmt.Errorf("ports: reserve host port %s for %s: %w", describe(m), owner, err)
	}
	return nil
}

func (r *Registry) readPortFile(m portspec.Mapping) (owner string, ok bool, err error) {
	return r.store.Claimant(r.portFile(m))
}

func (r *Registry) writeIndex(owner string, ms []portspec.Mapping) error {
	b, err := json.Marshal(ms)
	if err != nil {
		return fmt.Errorf("ports: index of %s: %w", owner, err)
	}
	return r.store.WriteIndex(owner, string(b)+"\n")
}

// readIndex reads owner's index. Unlike hooks/ipam, a damaged index is an
// error rather than stale: it is the only record of which port files the
// owner may have, and dropping it would leave those ports blocked for good.
func (r *Registry) readIndex(owner string) (ms []portspec.Mapping, indexed bool, err error) {
	b, indexed, err := r.store.ReadIndex(owner)
	if err != nil || !indexed {
		return nil, false, err
	}
	path := r.store.Path("owners", owner)
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, false, fmt.Errorf("ports: index %s is damaged (remove it and the port files naming %s by hand): %w", path, owner, err)
	}
	if ms, err = normalize(ms); err != nil {
		return nil, false, fmt.Errorf("ports: index %s is damaged: %w", path, err)
	}
	return ms, true, nil
}

func (r *Registry) lock(how int) (func(), error) { return r.store.Lock(how) }

func (r *Registry) portFile(m portspec.Mapping) string {
	return filepath.Join(r.portDir(m), addrName(m.HostIP))
}

func (r *Registry) portDir(m portspec.Mapping) string {
	return filepath.Join(r.dir, m.Protocol, strconv.Itoa(int(m.HostPort)))
}

// normalize checks ms and returns a sorted copy with the wildcard spelled
// one way (the zero Addr). It refuses two mappings of one host port that
// overlap: the kernel could forward that port to only one of them.
func normalize(ms []portspec.Mapping) ([]portspec.Mapping, error) {
	out := make([]portspec.Mapping, 0, len(ms))
	for _, m := range ms {
		switch {
		case m.Protocol != "tcp" && m.Protocol != "udp":
			return nil, fmt.Errorf("mapping %v: unknown protocol %q (use tcp or udp)", m, m.Protocol)
		case m.HostPort == 0 || m.ContainerPort == 0:
			return nil, fmt.Errorf("mapping %v: port 0 cannot be published", m)
		case m.HostIP.IsValid() && !m.HostIP.Is4():
			return nil, fmt.Errorf("mapping %v: host address %s is not IPv4", m, m.HostIP)
		}
		if m.HostIP.IsUnspecified() {
			m.HostIP = netip.Addr{}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, compareMappings)
	for i := 1; i < len(out); i++ {
		a, b := out[i-1], out[i]
		if a.Protocol == b.Protocol && a.HostPort == b.HostPort && overlaps(a.HostIP, b.HostIP) {
			return nil, fmt.Errorf("host port %s is listed twice (%v and %v)", describe(b), a, b)
		}
	}
	return out, nil
}

// compareMappings orders mappings by protocol, host port, then host
// address with the wildcard first, so that overlapping mappings of one
// host port sort next to each other.
func compareMappings(a, b portspec.Mapping) int {
	return cmp.Or(
		cmp.Compare(a.Protocol, b.Protocol),
		cmp.Compare(a.HostPort, b.HostPort),
		a.HostIP.Compare(b.HostIP),
		cmp.Compare(a.ContainerPort, b.ContainerPort),
	)
}

func sameMappings(a, b []portspec.Mapping) bool {
	return slices.Equal(a, b) // both normalized, hence sorted
}

// overlaps reports whether reservations on host addresses a and b clash:
// the same address, or either is the wildcard.
func overlaps(a, b netip.Addr) bool {
	return a == b || !a.IsValid() || !b.IsValid()
}

func addrName(ip netip.Addr) string {
	if !ip.IsValid() {
		return wildcardName
	}
	return ip.String()
}

func parseAddrName(name string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(name)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	if ip.IsUnspecified() {
		return netip.Addr{}, true
	}
	return ip, true
}

// describe names the host side of m for messages: "8080/tcp" or
// "127.0.0.1:8080/tcp".
func describe(m portspec.Mapping) string {
	port := strconv.Itoa(int(m.HostPort)) + "/" + m.Protocol
	if m.HostIP.IsValid() {
		return m.HostIP.String() + ":" + port
	}
	return port
}
