package ipam

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-runtime/berth/internal/names"
)

var (
	subnet24 = netip.MustParsePrefix("10.88.0.0/24")
	gw24     = netip.MustParseAddr("10.88.0.1")
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func openPool(t *testing.T, dir string, subnet netip.Prefix, gw netip.Addr) *Pool {
	t.Helper()
	p, err := Open(dir, subnet, gw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustAllocate(t *testing.T, p *Pool, owner string) netip.Addr {
	t.Helper()
	a, err := p.Allocate(owner)
	if err != nil {
		t.Fatalf("Allocate(%q): %v", owner, err)
	}
	return a
}

func mustRelease(t *testing.T, p *Pool, owner string) {
	t.Helper()
	if err := p.Release(owner); err != nil {
		t.Fatalf("Release(%q): %v", owner, err)
	}
}

// checkConsistent asserts the pool's invariants on disk: every lease has an
// index entry naming it and no index entry is stale (this holds whenever no
// crash happened), and no temporary file is left.
func checkConsistent(t *testing.T, p *Pool) map[netip.Addr]string {
	t.Helper()
	leases, err := p.Leases()
	if err != nil {
		t.Fatal(err)
	}
	owners, err := os.ReadDir(p.ownersDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != len(leases) {
		t.Errorf("%d owner index entries for %d leases", len(owners), len(leases))
	}
	for a, owner := range leases {
		b, err := os.ReadFile(p.indexFile(owner))
		if err != nil {
			t.Errorf("lease %s of %s: %v", a, owner, err)
			continue
		}
		if got := strings.TrimSpace(string(b)); got != a.String() {
			t.Errorf("owner index of %s says %s, lease file says %s", owner, got, a)
		}
	}
	if tmp, _ := os.ReadDir(p.tmpDir()); len(tmp) != 0 {
		t.Errorf("%d temporary files left", len(tmp))
	}
	return leases
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		subnet  netip.Prefix
		gw      netip.Addr
		mention string
	}{
		{netip.MustParsePrefix("fd00::/64"), addr("fd00::1"), "subnet fd00::/64: only IPv4"},
		{netip.Prefix{}, gw24, "only IPv4"},
		{netip.MustParsePrefix("10.0.0.0/31"), addr("10.0.0.0"), "subnet 10.0.0.0/31 is too small"},
		{subnet24, addr("10.89.0.1"), "gateway 10.89.0.1 is not in subnet 10.88.0.0/24"},
		{subnet24, netip.Addr{}, "is not in subnet 10.88.0.0/24"},
		{subnet24, addr("10.88.0.0"), "gateway 10.88.0.0 is the network address"},
		{subnet24, addr("10.88.0.255"), "gateway 10.88.0.255 is the broadcast address"},
	} {
		_, err := Open(dir, tc.subnet, tc.gw)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("Open(%s, %s) = %v, want an error mentioning %q", tc.subnet, tc.gw, err, tc.mention)
		}
	}
}

func TestOpenLayoutAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam", "net0")
	// A subnet given with host bits is the same subnet.
	p := openPool(t, dir, netip.MustParsePrefix("10.88.0.9/24"), gw24)
	a := mustAllocate(t, p, "c1")
	for _, path := range []string{dir, p.leasesDir(), p.ownersDir(), p.tmpDir()} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", path, fi.Mode(), err)
		}
	}
	for _, path := range []string{filepath.Join(dir, "lock"), filepath.Join(dir, "subnet"), p.lastReservedFile(), p.leaseFile(a), p.indexFile("c1")} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want a 0600 file", path, fi.Mode(), err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "subnet")); string(b) != "10.88.0.0/24\n" {
		t.Errorf("subnet file = %q", b)
	}
	if b, _ := os.ReadFile(p.leaseFile(a)); string(b) != "c1" {
		t.Errorf("lease file = %q", b)
	}

	_, err := Open(dir, netip.MustParsePrefix("10.99.0.0/24"), addr("10.99.0.1"))
	if err == nil || !strings.Contains(err.Error(), "holds leases of subnet 10.88.0.0/24, not 10.99.0.0/24") {
		t.Errorf("reopening with another subnet: %v", err)
	}
}

func TestAllocateRoundRobin(t *testing.T) {
	p := openPool(t, t.TempDir(), subnet24, gw24)
	// The gateway .1 and network .0 are skipped.
	for i, owner := range []string{"c1", "c2", "c3"} {
		if got, want := mustAllocate(t, p, owner), addr(fmt.Sprintf("10.88.0.%d", i+2)); got != want {
			t.Fatalf("Allocate(%s) = %s, want %s", owner, got, want)
		}
	}
	// A released address is not handed out again at once.
	mustRelease(t, p, "c2")
	if got := mustAllocate(t, p, "c4"); got != addr("10.88.0.5") {
		t.Fatalf("after releasing .3, Allocate = %s, want 10.88.0.5", got)
	}
	// A fresh Pool on the same directory carries on where the last left off.
	p = openPool(t, p.dir, subnet24, gw24)
	if got := mustAllocate(t, p, "c5"); got != addr("10.88.0.6") {
		t.Fatalf("Allocate = %s, want 10.88.0.6", got)
	}
	checkConsistent(t, p)
}

func TestAllocateWrapsAndSkipsReserved(t *testing.T) {
	// 10.0.0.0/29: .0 network, .7 broadcast; gateway in the middle at .4.
	p := openPool(t, t.TempDir(), netip.MustParsePrefix("10.0.0.0/29"), addr("10.0.0.4"))
	var got []string
	for i := range 5 {
		got = append(got, mustAllocate(t, p, fmt.Sprintf("c%d", i)).String())
	}
	if want := "10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.5 10.0.0.6"; strings.Join(got, " ") != want {
		t.Fatalf("allocated %v, want %s", got, want)
	}
	_, err := p.Allocate("c5")
	if err == nil || !strings.Contains(err.Error(), "no free address left in subnet 10.0.0.0/29") {
		t.Fatalf("Allocate on a full /29 = %v, want an error naming the subnet", err)
	}
	// After the last address the search wraps around to the first free one.
	mustRelease(t, p, "c1")
	if a := mustAllocate(t, p, "c5"); a != addr("10.0.0.2") {
		t.Fatalf("after wrapping Allocate = %s, want 10.0.0.2", a)
	}
	leases := checkConsistent(t, p)
	for _, reserved := range []string{"10.0.0.0", "10.0.0.4", "10.0.0.7"} {
		if owner, ok := leases[addr(reserved)]; ok {
			t.Errorf("%s was leased to %s", reserved, owner)
		}
	}
}

func TestAllocateNeverHandsOutReserved(t *testing.T) {
	// Gateway at the top of the range this time, and a few rounds of churn.
	p := openPool(t, t.TempDir(), netip.MustParsePrefix("192.168.7.0/29"), addr("192.168.7.6"))
	for round := range 4 {
		for i := range 5 {
			a := mustAllocate(t, p, fmt.Sprintf("r%d-c%d", round, i))
			switch a.String() {
			case "192.168.7.0", "192.168.7.6", "192.168.7.7":
				t.Fatalf("handed out %s", a)
			}
		}
		if _, err := p.Allocate("one-too-many"); err == nil {
			t.Fatal("a /29 with a gateway gave out a sixth address")
		}
		for i := range 5 {
			mustRelease(t, p, fmt.Sprintf("r%d-c%d", round, i))
		}
	}
	if leases := checkConsistent(t, p); len(leases) != 0 {
		t.Fatalf("leases left: %v", leases)
	}
}

func TestAllocateIdempotent(t *testing.T) {
	p := openPool(t, t.TempDir(), subnet24, gw24)
	a := mustAllocate(t, p, "c1")
	mustAllocate(t, p, "c2")
	if again := mustAllocate(t, p, "c1"); again != a {
		t.Fatalf("second Allocate(c1) = %s, first gave %s", again, a)
	}
	if leases := checkConsistent(t, p); len(leases) != 2 || leases[a] != "c1" {
		t.Fatalf("leases: %v, want 2 with %s leased to c1", leases, a)
	}
}

func TestReleaseWithoutLease(t *testing.T) {
	p := openPool(t, t.TempDir(), subnet24, gw24)
	mustRelease(t, p, "never-allocated")
	mustAllocate(t, p, "c1")
	mustRelease(t, p, "c1")
	mustRelease(t, p, "c1")
	if leases := checkConsistent(t, p); len(leases) != 0 {
		t.Fatalf("leases: %v", leases)
	}
}

func TestAllocateSpecific(t *testing.T) {
	p := openPool(t, t.TempDir(), subnet24, gw24)
	if err := p.AllocateSpecific("c1", addr("10.88.0.50")); err != nil {
		t.Fatal(err)
	}
	// Again for the same owner and address: fine.
	if err := p.AllocateSpecific("c1", addr("10.88.0.50")); err != nil {
		t.Fatalf("repeating AllocateSpecific: %v", err)
	}
	// Allocate returns the specific lease too.
	if a := mustAllocate(t, p, "c1"); a != addr("10.88.0.50") {
		t.Fatalf("Allocate(c1) = %s", a)
	}
	// A specific address does not move where automatic allocation goes on.
	if a := mustAllocate(t, p, "c2"); a != addr("10.88.0.2") {
		t.Fatalf("Allocate(c2) = %s, want 10.88.0.2", a)
	}
	for _, tc := range []struct {
		owner   string
		addr    netip.Addr
		mention string
	}{
		{"c3", addr("10.88.0.50"), "address 10.88.0.50 is already leased to c1"},
		{"c3", addr("10.88.0.2"), "address 10.88.0.2 is already leased to c2"},
		{"c1", addr("10.88.0.51"), "c1 already holds address 10.88.0.50"},
		{"c3", addr("10.88.1.5"), "address 10.88.1.5 is outside subnet 10.88.0.0/24"},
		{"c3", addr("::ffff:10.88.0.5"), "is outside subnet"},
		{"c3", netip.Addr{}, "is outside subnet"},
		{"c3", addr("10.88.0.0"), "address 10.88.0.0 is the network address"},
		{"c3", addr("10.88.0.255"), "address 10.88.0.255 is the broadcast address"},
		{"c3", addr("10.88.0.1"), "address 10.88.0.1 is the gateway"},
		{"a/b", addr("10.88.0.9"), `container id "a/b": character '/' not allowed`},
	} {
		err := p.AllocateSpecific(tc.owner, tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("AllocateSpecific(%q, %s) = %v, want an error mentioning %q", tc.owner, tc.addr, err, tc.mention)
		}
	}
	// Automatic allocation steps over the specific lease.
	if err := p.AllocateSpecific("c3", addr("10.88.0.3")); err != nil {
		t.Fatal(err)
	}
	if a := mustAllocate(t, p, "c4"); a != addr("10.88.0.4") {
		t.Fatalf("Allocate(c4) = %s, want 10.88.0.4", a)
	}
	checkConsistent(t, p)
}

func TestBadOwners(t *testing.T) {
	p := openPool(t, t.TempDir(), subnet24, gw24)
	for owner, mention := range map[string]string{
		"":                 "must not be empty",
		".":                `container id ".": must not be a path element`,
		"..":               `container id "..": must not be a path element`,
		"../../etc/passwd": "character '/' not allowed",
		"a\x00b":           `character '\x00' not allowed`,
		strings.Repeat("x", names.MaxContainerID+1): "longer than 255 bytes",
	} {
		if _, err := p.Allocate(owner); err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("Allocate(%q) = %v, want an error mentioning %q", owner, err, mention)
		}
		if err := p.Release(owner); err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("Release(%q) = %v, want an error mentioning %q", owner, err, mention)
		}
	}
	// The longest container id names a lease's owner file.
	if _, err := p.Allocate(strings.Repeat("x", 255)); err != nil {
		t.Errorf("255-byte owner: %v", err)
	}
	if leases := checkConsistent(t, p); len(leases) != 1 {
		t.Fatalf("leases: %v", leases)
	}
}

// TestCrashDebris sets up what a crash at each point of a write leaves
// behind and checks the pool copes.
func TestCrashDebris(t *testing.T) {
	dir := t.TempDir()
	p := openPool(t, dir, subnet24, gw24)
	mustAllocate(t, p, "c1") // 10.88.0.2

	// A temporary file: a crash before a link or rename. Open removes it;
	// it was never visible as a lease.
	if err := os.WriteFile(filepath.Join(p.tmpDir(), "new-123"), []byte("c9"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = openPool(t, dir, subnet24, gw24)
	if leases := checkConsistent(t, p); len(leases) != 1 {
		t.Fatalf("leases: %v", leases)
	}

	// An index entry without its lease: a crash inside Allocate after the
	// index was written, or inside Release after the lease was removed.
	// Allocate treats the entry as stale and allocates afresh.
	if err := os.WriteFile(p.indexFile("c2"), []byte("10.88.0.77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a := mustAllocate(t, p, "c2"); a != addr("10.88.0.3") {
		t.Fatalf("Allocate(c2) with a stale index = %s, want 10.88.0.3", a)
	}
	checkConsistent(t, p)

	// A stale index entry naming an address leased since to another owner:
	// Release drops the entry but leaves the other owner's lease alone.
	if err := os.WriteFile(p.indexFile("c3"), []byte("10.88.0.2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRelease(t, p, "c3")
	if leases, err := p.Leases(); err != nil || leases[addr("10.88.0.2")] != "c1" {
		t.Fatalf("Release of a stale entry touched c1's lease: %v, %v", leases, err)
	}
	// Likewise AllocateSpecific for that owner.
	if err := os.WriteFile(p.indexFile("c3"), []byte("10.88.0.2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.AllocateSpecific("c3", addr("10.88.0.40")); err != nil {
		t.Fatalf("AllocateSpecific with a stale index: %v", err)
	}

	// A damaged index entry (not something our writes produce) is stale too.
	if err := os.WriteFile(p.indexFile("c4"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRelease(t, p, "c4")
	if _, err := os.Stat(p.indexFile("c4")); !os.IsNotExist(err) {
		t.Fatalf("damaged index entry not removed: %v", err)
	}

	// A damaged last_reserved only moves where the search starts.
	if err := os.WriteFile(p.lastReservedFile(), []byte("not an address"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a := mustAllocate(t, p, "c5"); a != addr("10.88.0.4") {
		t.Fatalf("Allocate with a damaged last_reserved = %s, want 10.88.0.4", a)
	}
	if leases := checkConsistent(t, p); len(leases) != 4 {
		t.Fatalf("leases: %v", leases)
	}
}

const helperEnv = "BERTH_IPAM_TEST_HELPER"

// TestHelperProcess is not a test: TestConcurrentAllocate runs the test
// binary again with helperEnv set to "dir owner" so that a separate process
// allocates from the pool, and reads the address it prints.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestConcurrentAllocate")
	}
	dir, owner, _ := strings.Cut(spec, " ")
	p, err := Open(dir, subnet24, gw24)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	a, err := p.Allocate(owner)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("ADDR %s\n", a)
	os.Exit(0)
}

// TestConcurrentAllocate has 50 goroutines and 50 processes allocate from
// one pool at once, each opening the pool itself, so only a real file lock
// can keep them apart.
func TestConcurrentAllocate(t *testing.T) {
	dir := t.TempDir()
	const n = 50
	type result struct {
		owner string
		addr  netip.Addr
		err   error
	}
	results := make(chan result, 2*n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		owner := fmt.Sprintf("proc-%d", i)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir+" "+owner)
		wg.Go(func() {
			<-start
			out, err := cmd.Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					err = fmt.Errorf("%v: %s", err, ee.Stderr)
				}
				results <- result{owner, netip.Addr{}, err}
				return
			}
			var a netip.Addr
			for _, line := range strings.Split(string(out), "\n") {
				if s, ok := strings.CutPrefix(line, "ADDR "); ok {
					a, err = netip.ParseAddr(s)
				}
			}
			if !a.IsValid() && err == nil {
				err = fmt.Errorf("no address in output %q", out)
			}
			results <- result{owner, a, err}
		})
	}
	for i := range n {
		owner := fmt.Sprintf("goroutine-%d", i)
		wg.Go(func() {
			<-start
			p, err := Open(dir, subnet24, gw24)
			if err != nil {
				results <- result{owner, netip.Addr{}, err}
				return
			}
			a, err := p.Allocate(owner)
			results <- result{owner, a, err}
		})
	}
	close(start)
	wg.Wait()
	close(results)

	byAddr := make(map[netip.Addr]string)
	for r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.owner, r.err)
			continue
		}
		if other, dup := byAddr[r.addr]; dup {
			t.Errorf("%s handed to both %s and %s", r.addr, other, r.owner)
		}
		byAddr[r.addr] = r.owner
	}
	p := openPool(t, dir, subnet24, gw24)
	leases := checkConsistent(t, p)
	if len(leases) != 2*n {
		t.Errorf("%d leases, want %d", len(leases), 2*n)
	}
	for a, owner := range byAddr {
		if leases[a] != owner {
			t.Errorf("%s was handed to %s but its lease names %q", a, owner, leases[a])
		}
	}
}

// The Store's own files, as the tests look at them on disk.
func (p *Pool) ownersDir() string             { return p.store.Path("owners") }
func (p *Pool) tmpDir() string                { return p.store.Path("tmp") }
func (p *Pool) indexFile(owner string) string { return p.store.Path("owners", owner) }
