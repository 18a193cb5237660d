// Package ipam leases the addresses of a network's IPv4 subnet to
// containers. berth has no daemon, so the leases live in files and every
// berth-net run that reads or changes them holds a flock on the pool.
//
// A pool directory is a statefile.Store, whose doc gives the layout and
// the crash-safety rules; a pool keeps in it:
//
//	subnet            the subnet the pool was created for, e.g. "10.77.0.0/16\n"
//	last_reserved     the address Allocate handed out last, e.g. "10.77.0.7\n"
//	leases/<addr>     the claims: one file per lease, named by the address; content: the owner id
//	owners/<owner>    the owner's index: its address and "\n"
//
// By the Store's rules every lease has an index entry, but an index entry
// may lack its lease (a crash between the two steps). Such a stale entry
// is recognised because the lease it names is missing or names another
// owner; Allocate and Release discard it. last_reserved is only a hint
// for where to search next; if it is missing or wrong the search starts
// elsewhere and still skips leased addresses.
package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/crashpoint"
	"github.com/berth-runtime/berth/internal/statefile"
)

// Pool hands out addresses of one network's subnet to containers.
type Pool struct {
	store   *statefile.Store
	dir     string
	subnet  netip.Prefix
	gateway netip.Addr
	// first and last are the lowest and highest addresses a container may
	// get: the subnet without its network and broadcast addresses.
	first, last uint32
}

// Open opens the pool of subnet kept in dir, creating dir (mode 0700) if
// missing. gateway, which must lie in subnet, is never handed out.
//
// A pool directory is tied to the subnet it was created with: opening it
// with another subnet fails rather than mixing leases of two subnets.
func Open(dir string, subnet netip.Prefix, gateway netip.Addr) (*Pool, error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("ipam: subnet %s: only IPv4 subnets are supported", subnet)
	}
	subnet = subnet.Masked()
	if subnet.Bits() > 30 {
		return nil, fmt.Errorf("ipam: subnet %s is too small: it needs a network, a broadcast and a gateway address and one for a container (/30 at most)", subnet)
	}
	network := addrToU32(subnet.Addr())
	broadcast := network | (1<<(32-subnet.Bits()) - 1)
	switch {
	case !gateway.Is4() || !subnet.Contains(gateway):
		return nil, fmt.Errorf("ipam: gateway %s is not in subnet %s", gateway, subnet)
	case addrToU32(gateway) == network:
		return nil, fmt.Errorf("ipam: gateway %s is the network address of subnet %s", gateway, subnet)
	case addrToU32(gateway) == broadcast:
		return nil, fmt.Errorf("ipam: gateway %s is the broadcast address of subnet %s", gateway, subnet)
	}
	p := &Pool{dir: dir, subnet: subnet, gateway: gateway, first: network + 1, last: broadcast - 1}

	store, err := statefile.OpenStore(dir, "ipam "+subnet.String(), p.leasesDir())
	if err != nil {
		return nil, err
	}
	p.store = store
	unlock, err := p.lock(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := p.checkSubnetFile(); err != nil {
		return nil, err
	}
	return p, nil
}

// Allocate leases the next free address to owner (a container id) and
// returns it. If owner already holds a lease, Allocate returns that address:
// a hook that is run again after a failure must not take a second one.
//
// The search starts after the address handed out last, as CNI's host-local
// does, so that a just-released address is not reused at once while ARP
// caches and conntrack entries of its previous owner may still point at
// it. In the common case the next address is free and Allocate touches a
// fixed number of files, however many leases exist.
func (p *Pool) Allocate(owner string) (netip.Addr, error) {
	if err := statefile.CheckOwner(owner); err != nil {
		return netip.Addr{}, fmt.Errorf("ipam: %w", err)
	}
	unlock, err := p.lock(unix.LOCK_EX)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()

	held, ok, err := p.ownerLease(owner)
	if err != nil || ok {
		return held, err
	}
	size := p.last - p.first + 1
	start := p.searchStart()
	for i := uint32(0); i < size; i++ {
		candidate := p.first + (start-p.first+i)%size
		addr := u32ToAddr(candidate)
		if addr == p.gateway {
			continue
		}
		// Holding the lock, a missing lease file means the address is free.
		if _, err := os.Lstat(p.leaseFile(addr)); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return netip.Addr{}, fmt.Errorf("ipam %s: %w", p.subnet, err)
		}
		if err := p.lease(owner, addr); err != nil {
			return netip.Addr{}, err
		}
		// A hint only: if this write is lost, the next search starts
		// earlier and skips the leased addresses.
		if err := p.store.Write(p.lastReservedFile(), addr.String()+"\n"); err != nil {
			return netip.Addr{}, fmt.Errorf("ipam %s: record last reserved address: %w", p.subnet, err)
		}
		return addr, nil
	}
	return netip.Addr{}, fmt.Errorf("ipam: no free address left in subnet %s for %s", p.subnet, owner)
}

// AllocateSpecific leases addr to owner. It fails if addr is outside the
// subnet, is its network, broadcast or gateway address, is leased to
// another owner, or if owner already holds another address. Asking again
// for the address owner holds succeeds.
//
// It leaves last_reserved alone: a user's choice says nothing about where
// automatic allocation should continue.
func (p *Pool) AllocateSpecific(owner string, addr netip.Addr) error {
	if err := statefile.CheckOwner(owner); err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	if err := p.checkLeasable(addr); err != nil {
		return err
	}
	unlock, err := p.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()

	held, ok, err := p.ownerLease(owner)
	if err != nil {
		return err
	}
	if ok {
		if held == addr {
			return nil
		}
		return fmt.Errorf("ipam: %s already holds address %s; release it before asking for %s", owner, held, addr)
	}
	other, taken, err := p.readLease(addr)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("ipam: address %s is already leased to %s", addr, other)
	}
	return p.lease(owner, addr)
}

// Release ends owner's lease. Releasing an owner without a lease is not an
// error, so teardown can run more than once.
func (p *Pool) Release(owner string) error {
	if err := statefile.CheckOwner(owner); err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	unlock, err := p.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()

	addr, indexed, err := p.readIndex(owner)
	if err != nil {
		return err
	}
	if !indexed {
		return nil
	}
	if addr.IsValid() {
		leaseOwner, leased, err := p.readLease(addr)
		if err != nil {
			return err
		}
		// A stale index entry may name an address leased since to someone
		// else; that lease is not ours to end.
		if leased && leaseOwner == owner {
			if err := statefile.Remove(p.leaseFile(addr)); err != nil {
				return fmt.Errorf("ipam: release %s of %s: %w", addr, owner, err)
			}
		}
	}
	// Only now, with the lease gone, may the index entry go (see package doc).
	if err := p.store.RemoveIndex(owner); err != nil {
		return err
	}
	return nil
}

// Leases returns every lease of the pool, address to owner.
func (p *Pool) Leases() (map[netip.Addr]string, error) {
	unlock, err := p.lock(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()

	entries, err := os.ReadDir(p.leasesDir())
	if err != nil {
		return nil, fmt.Errorf("ipam %s: %w", p.subnet, err)
	}
	leases := make(map[netip.Addr]string, len(entries))
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil {
			continue // not a lease file; nothing of ours
		}
		owner, ok, err := p.readLease(addr)
		if err != nil {
			return nil, err
		}
		if ok {
			leases[addr] = owner
		}
	}
	return leases, nil
}

// lease records addr as owner's: index entry first, then the lease file
// (see the package doc for why that order).
func (p *Pool) lease(owner string, addr netip.Addr) error {
	if err := p.store.WriteIndex(owner, addr.String()+"\n"); err != nil {
		return err
	}
	// A crash here leaves an index entry without its lease: the stale
	// entry the package doc describes.
	crashpoint.Hit("net.setup.lease-index")
	if err := p.store.Claim(p.leaseFile(addr), owner); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Only a writer ignoring the lock could have got here first.
			return fmt.Errorf("ipam: lease %s to %s: address taken meanwhile", addr, owner)
		}
		return fmt.Errorf("ipam: lease %s to %s: %w", addr, owner, err)
	}
	return nil
}

// ownerLease returns the address owner holds. An index entry whose lease
// is missing or names another owner is stale (a crash between the two
// steps of lease or of Release) and is removed.
func (p *Pool) ownerLease(owner string) (netip.Addr, bool, error) {
	addr, indexed, err := p.readIndex(owner)
	if err != nil || !indexed {
		return netip.Addr{}, false, err
	}
	if addr.IsValid() {
		leaseOwner, leased, err := p.readLease(addr)
		if err != nil {
			return netip.Addr{}, false, err
		}
		if leased && leaseOwner == owner {
			return addr, true, nil
		}
	}
	if err := p.store.RemoveIndex(owner); err != nil {
		return netip.Addr{}, false, err
	}
	return netip.Addr{}, false, nil
}

// readIndex reads owner's index entry. indexed is false if there is none;
// an entry that does not hold an address of the subnet (which our atomic
// writes cannot produce) is returned as indexed with the zero Addr, so
// callers treat it as stale.
func (p *Pool) readIndex(owner string) (addr netip.Addr, indexed bool, err error) {
	b, indexed, err := p.store.ReadIndex(owner)
	if err != nil || !indexed {
		return netip.Addr{}, false, err
	}
	addr, err = netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || !p.subnet.Contains(addr) {
		return netip.Addr{}, true, nil
	}
	return addr, true, nil
}

// readLease returns the owner named by addr's lease file.
func (p *Pool) readLease(addr netip.Addr) (owner string, ok bool, err error) {
	return p.store.Claimant(p.leaseFile(addr))
}

// searchStart is the address after the one handed out last, or the first
// address if that is unknown.
func (p *Pool) searchStart() uint32 {
	b, err := os.ReadFile(p.lastReservedFile())
	if err != nil {
		return p.first
	}
	last, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || !p.subnet.Contains(last) {
		return p.first
	}
	next := addrToU32(last) + 1
	if next < p.first || next > p.last {
		return p.first
	}
	return next
}

// checkLeasable refuses addresses a container must not get.
func (p *Pool) checkLeasable(addr netip.Addr) error {
	switch {
	case !addr.Is4() || !p.subnet.Contains(addr):
		return fmt.Errorf("ipam: address %s is outside subnet %s", addr, p.subnet)
	case addrToU32(addr) == p.first-1:
		return fmt.Errorf("ipam: address %s is the network address of subnet %s", addr, p.subnet)
	case addrToU32(addr) == p.last+1:
		return fmt.Errorf("ipam: address %s is the broadcast address of subnet %s", addr, p.subnet)
	case addr == p.gateway:
		return fmt.Errorf("ipam: address %s is the gateway of subnet %s", addr, p.subnet)
	}
	return nil
}

// checkSubnetFile records the pool's subnet on first use and refuses a
// directory made for another subnet. Called with the lock held.
func (p *Pool) checkSubnetFile() error {
	path := filepath.Join(p.dir, "subnet")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := p.store.Write(path, p.subnet.String()+"\n"); err != nil {
			return fmt.Errorf("ipam %s: record subnet: %w", p.dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	if recorded := strings.TrimSpace(string(b)); recorded != p.subnet.String() {
		return fmt.Errorf("ipam: %s holds leases of subnet %s, not %s", p.dir, recorded, p.subnet)
	}
	return nil
}

func (p *Pool) lock(how int) (func(), error) { return p.store.Lock(how) }

func (p *Pool) leasesDir() string                { return filepath.Join(p.dir, "leases") }
func (p *Pool) lastReservedFile() string         { return filepath.Join(p.dir, "last_reserved") }
func (p *Pool) leaseFile(addr netip.Addr) string { return filepath.Join(p.leasesDir(), addr.String()) }

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32ToAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
