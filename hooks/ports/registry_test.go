package ports

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/errdefs"

	"github.com/berth-runtime/berth/internal/names"
)

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo2 = netip.MustParseAddr("127.0.0.2")
)

// freePort picks a random port that no socket on this host uses for TCP or
// UDP right now. The range lies below Linux's ephemeral ports (32768 and
// up), so outgoing connections do not take it while a test runs.
func freePort(t *testing.T) uint16 {
	t.Helper()
	for range 200 {
		p := uint16(20000 + rand.IntN(12000))
		if probeHostPort(tcp(p)) == nil && probeHostPort(udp(p)) == nil {
			return p
		}
	}
	t.Fatal("no free port found")
	return 0
}

// listenOn makes the test itself a host program listening on a free port,
// picking another port when the one it tried is taken.
func listenOn(t *testing.T, network string, ip netip.Addr) uint16 {
	t.Helper()
	for range 200 {
		p := freePort(t)
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(int(p)))
		var err error
		if network == "tcp4" {
			var l net.Listener
			if l, err = net.Listen(network, addr); err == nil {
				t.Cleanup(func() { l.Close() })
			}
		} else {
			var c net.PacketConn
			if c, err = net.ListenPacket(network, addr); err == nil {
				t.Cleanup(func() { c.Close() })
			}
		}
		if err == nil {
			return p
		}
	}
	t.Fatal("could not listen on any port")
	return 0
}

func tcp(port uint16) portspec.Mapping {
	return portspec.Mapping{HostPort: port, ContainerPort: 80, Protocol: "tcp"}
}

func udp(port uint16) portspec.Mapping {
	return portspec.Mapping{HostPort: port, ContainerPort: 53, Protocol: "udp"}
}

func on(ip netip.Addr, m portspec.Mapping) portspec.Mapping {
	m.HostIP = ip
	return m
}

func openRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := Open(filepath.Join(t.TempDir(), "ports"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustReserve(t *testing.T, r *Registry, owner string, ms ...portspec.Mapping) {
	t.Helper()
	if err := r.Reserve(owner, ms); err != nil {
		t.Fatalf("Reserve(%s, %v): %v", owner, ms, err)
	}
}

func wantReserveError(t *testing.T, r *Registry, owner string, ms []portspec.Mapping, mention ...string) {
	t.Helper()
	err := r.Reserve(owner, ms)
	if err == nil {
		t.Fatalf("Reserve(%s, %v) succeeded, want an error mentioning %q", owner, ms, mention)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("Reserve(%s, %v) = %v, want an error mentioning %q", owner, ms, err, m)
		}
		if strings.Contains(m, "already published") && !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("Reserve(%s, %v) = %v, want an errdefs.ErrConflict", owner, ms, err)
		}
	}
}

func held(t *testing.T, r *Registry) map[string][]portspec.Mapping {
	t.Helper()
	h, err := r.Held()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLayoutAndPermissions(t *testing.T) {
	r := openRegistry(t)
	p := freePort(t)
	mustReserve(t, r, "c1", tcp(p), on(lo1, udp(p)))

	wild := filepath.Join(r.dir, "tcp", strconv.Itoa(int(p)), "0.0.0.0")
	spec := filepath.Join(r.dir, "udp", strconv.Itoa(int(p)), "127.0.0.1")
	for _, f := range []string{wild, spec, r.indexFile("c1"), filepath.Join(r.dir, "lock")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want a 0600 file", f, fi.Mode(), err)
		}
	}
	for _, f := range []string{wild, spec} {
		if b, _ := os.ReadFile(f); string(b) != "c1" {
			t.Errorf("%s holds %q, want c1", f, b)
		}
	}
	for _, d := range []string{r.dir, r.ownersDir(), r.tmpDir(), filepath.Dir(wild), filepath.Dir(spec)} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a 0700 directory", d, fi.Mode(), err)
		}
	}
	var index []portspec.Mapping
	b, _ := os.ReadFile(r.indexFile("c1"))
	if err := json.Unmarshal(b, &index); err != nil || len(index) != 2 {
		t.Fatalf("index %s: %v", b, err)
	}
}

func TestReserveConflicts(t *testing.T) {
	r := openRegistry(t)
	p, q, s := freePort(t), freePort(t), freePort(t)
	ps := fmt.Sprintf("%d/tcp", p)

	// Same port, different owner.
	mustReserve(t, r, "c1", tcp(p))
	wantReserveError(t, r, "c2", []portspec.Mapping{tcp(p)}, "host port "+ps+" is already published by container c1")
	// 0.0.0.0 is the wildcard too.
	wantReserveError(t, r, "c2", []portspec.Mapping{on(netip.MustParseAddr("0.0.0.0"), tcp(p))}, ps+" is already published by container c1")
	// Wildcard held, specific wanted.
	wantReserveError(t, r, "c2", []portspec.Mapping{on(lo1, tcp(p))}, "host port 127.0.0.1:"+ps+" is already published by container c1")
	// TCP and UDP do not clash.
	mustReserve(t, r, "c2", udp(p))

	// Different specific addresses do not clash...
	mustReserve(t, r, "c3", on(lo1, tcp(q)))
	mustReserve(t, r, "c4", on(lo2, tcp(q)))
	wantReserveError(t, r, "c5", []portspec.Mapping{on(lo1, tcp(q))}, fmt.Sprintf("host port 127.0.0.1:%d/tcp is already published by container c3", q))
	// ...but the wildcard clashes with each: specific held, wildcard wanted.
	wantReserveError(t, r, "c5", []portspec.Mapping{tcp(q)}, fmt.Sprintf("host port %d/tcp is already published by container c", q))

	// Another owner's wildcard on one protocol does not block the other.
	mustReserve(t, r, "c6", on(lo1, udp(s)))
	mustReserve(t, r, "c7", tcp(s))

	want := map[string][]portspec.Mapping{
		"c1": {tcp(p)},
		"c2": {udp(p)},
		"c3": {on(lo1, tcp(q))},
		"c4": {on(lo2, tcp(q))},
		"c6": {on(lo1, udp(s))},
		"c7": {tcp(s)},
	}
	if got := held(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("Held() = %v, want %v", got, want)
	}
}

func TestReserveAllOrNothing(t *testing.T) {
	r := openRegistry(t)
	// Mappings are checked in order of protocol and port: make the clash
	// come second.
	p1, p2 := freePort(t), freePort(t)
	if p1 > p2 {
		p1, p2 = p2, p1
	}
	mustReserve(t, r, "c1", tcp(p2))
	wantReserveError(t, r, "c2", []portspec.Mapping{tcp(p1), tcp(p2)}, fmt.Sprintf("host port %d/tcp is already published by container c1", p2))
	if h := held(t, r); len(h) != 1 {
		t.Fatalf("a failed Reserve left a reservation: %v", h)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "tcp", strconv.Itoa(int(p1)))); !os.IsNotExist(err) {
		t.Fatalf("a failed Reserve left files for port %d: %v", p1, err)
	}
	// The first port really is free.
	mustReserve(t, r, "c3", tcp(p1))

	// The same when the host probe, not a reservation, fails the second
	// (tcp sorts before udp).
	p3 := listenOn(t, "udp4", lo1)
	p4 := freePort(t)
	wantReserveError(t, r, "c4", []portspec.Mapping{udp(p3), tcp(p4)}, fmt.Sprintf("host port %d/udp is in use by another program on the host", p3))
	if h := held(t, r); len(h) != 2 {
		t.Fatalf("a failed Reserve left a reservation: %v", h)
	}
}

func TestReserveDetectsHostListener(t *testing.T) {
	r := openRegistry(t)
	p := listenOn(t, "tcp4", lo1)
	wantReserveError(t, r, "c1", []portspec.Mapping{on(lo1, tcp(p))}, fmt.Sprintf("host port 127.0.0.1:%d/tcp is in use by another program on the host", p))
	wantReserveError(t, r, "c1", []portspec.Mapping{tcp(p)}, fmt.Sprintf("host port %d/tcp is in use by another program on the host", p))
	// A TCP listener leaves the UDP port free, and another address too.
	mustReserve(t, r, "c1", udp(p), on(lo2, tcp(p)))

	q := listenOn(t, "udp4", netip.IPv4Unspecified())
	wantReserveError(t, r, "c2", []portspec.Mapping{on(lo2, udp(q))}, fmt.Sprintf("host port 127.0.0.2:%d/udp is in use by another program on the host", q))

	// An address this host does not have cannot be published on.
	testNet := netip.MustParseAddr("192.0.2.1") // TEST-NET-1; bind fails locally, nothing is sent
	wantReserveError(t, r, "c3", []portspec.Mapping{on(testNet, tcp(freePort(t)))}, "192.0.2.1 is not an address of this host")

	if h := held(t, r); len(h) != 1 || len(h["c1"]) != 2 {
		t.Fatalf("Held() = %v", h)
	}
}

func TestReserveIdempotent(t *testing.T) {
	r := openRegistry(t)
	p, q := freePort(t), freePort(t)
	ms := []portspec.Mapping{tcp(p), on(lo1, udp(q))}
	mustReserve(t, r, "c1", ms...)
	// Something now listens on the port for the owner (a port holder or a
	// proxy); the owner's own re-reservation must not probe it.
	l, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(int(p))))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The same set again, in another order and with 0.0.0.0 for the
	// wildcard, is the same reservation.
	mustReserve(t, r, "c1", on(lo1, udp(q)), on(netip.IPv4Unspecified(), tcp(p)))
	// Another owner is still refused, by the reservation.
	wantReserveError(t, r, "c2", []portspec.Mapping{tcp(p)}, "already published by container c1")
	// A different set is refused until the first is released.
	wantReserveError(t, r, "c1", []portspec.Mapping{tcp(p)}, "c1 already holds host ports")
	if got := held(t, r)["c1"]; len(got) != 2 {
		t.Fatalf("Held()[c1] = %v", got)
	}
	// Nothing to reserve is fine for an owner holding nothing.
	mustReserve(t, r, "c3")
	if _, ok := held(t, r)["c3"]; ok {
		t.Fatal("an empty Reserve created an index")
	}
}

func TestReleaseAndReserveAgain(t *testing.T) {
	r := openRegistry(t)
	p, q := freePort(t), freePort(t)
	mustReserve(t, r, "c1", tcp(p), on(lo1, tcp(q)))
	mustReserve(t, r, "c2", on(lo2, tcp(q)))
	if err := r.Release("c1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Release("c1"); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if err := r.Release("never-reserved"); err != nil {
		t.Fatalf("Release of an owner holding nothing: %v", err)
	}
	if h := held(t, r); len(h) != 1 || len(h["c2"]) != 1 {
		t.Fatalf("Held() = %v", h)
	}
	// The emptied port directory is gone, the shared one stays.
	if _, err := os.Stat(filepath.Join(r.dir, "tcp", strconv.Itoa(int(p)))); !os.IsNotExist(err) {
		t.Errorf("port directory of %d left behind: %v", p, err)
	}
	mustReserve(t, r, "c3", tcp(p), on(lo1, tcp(q)))
	if err := r.Release("c3"); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, r, "c1", tcp(p))
}

func TestReserveRejects(t *testing.T) {
	r := openRegistry(t)
	p := freePort(t)
	for _, tc := range []struct {
		ms      []portspec.Mapping
		mention string
	}{
		{[]portspec.Mapping{{HostPort: p, ContainerPort: 80, Protocol: "sctp"}}, `unknown protocol "sctp"`},
		{[]portspec.Mapping{{HostPort: p, ContainerPort: 80}}, `unknown protocol ""`},
		{[]portspec.Mapping{{HostPort: 0, ContainerPort: 80, Protocol: "tcp"}}, "port 0 cannot be published"},
		{[]portspec.Mapping{{HostPort: p, Protocol: "tcp"}}, "port 0 cannot be published"},
		{[]portspec.Mapping{on(netip.MustParseAddr("::1"), tcp(p))}, "host address ::1 is not IPv4"},
		{[]portspec.Mapping{tcp(p), tcp(p)}, fmt.Sprintf("host port %d/tcp is listed twice", p)},
		{[]portspec.Mapping{on(lo1, tcp(p)), tcp(p)}, fmt.Sprintf("host port 127.0.0.1:%d/tcp is listed twice", p)},
	} {
		wantReserveError(t, r, "c1", tc.ms, "reserve for c1", tc.mention)
	}
	for owner, mention := range map[string]string{
		"":          "must not be empty",
		"..":        "must not be a path element",
		"x/../../y": "character '/' not allowed",
		"a\x00":     `character '\x00' not allowed`,
		strings.Repeat("a", names.MaxContainerID+1): "longer than 255 bytes",
	} {
		wantReserveError(t, r, owner, []portspec.Mapping{tcp(p)}, mention)
		if err := r.Release(owner); err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("Release(%q) = %v, want an error mentioning %q", owner, err, mention)
		}
	}
	if h := held(t, r); len(h) != 0 {
		t.Fatalf("Held() = %v", h)
	}
}

func TestConcurrentReserve(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ports")
	p := freePort(t)
	const n = 20
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			// Each its own Registry, as separate berth-net runs would be.
			r, err := Open(dir)
			if err == nil {
				err = r.Reserve(fmt.Sprintf("c%d", i), []portspec.Mapping{tcp(p)})
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("both c%d and c%d reserved port %d", winner, i, p)
		case err == nil:
			winner = i
		case !strings.Contains(err.Error(), "is already published by container c"):
			t.Errorf("c%d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody reserved the port")
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]portspec.Mapping{fmt.Sprintf("c%d", winner): {tcp(p)}}
	if got := held(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("Held() = %v, want %v", got, want)
	}
}

// TestCrashDebris sets up what a crash at each point of a Reserve leaves
// behind and checks the registry copes.
func TestCrashDebris(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ports")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := freePort(t)

	// A temporary file from a crash before a link or rename: Open clears it.
	if err := os.WriteFile(filepath.Join(r.tmpDir(), "new-1"), []byte("c9"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	if tmp, _ := os.ReadDir(r.tmpDir()); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}

	// An index without its port files: a crash in Reserve after the index
	// was written. The owner holds nothing, so Held lists it without
	// mappings (gc can still release it) and others may take the port.
	if err := r.writeIndex("c1", []portspec.Mapping{tcp(p)}); err != nil {
		t.Fatal(err)
	}
	if h := held(t, r); len(h) != 1 {
		t.Fatalf("Held() = %v", h)
	} else if ms, ok := h["c1"]; !ok || len(ms) != 0 {
		t.Fatalf("Held() = %v, want c1 holding nothing", h)
	}
	// Re-running the crashed Reserve completes it.
	mustReserve(t, r, "c1", tcp(p))
	if h := held(t, r); len(h["c1"]) != 1 {
		t.Fatalf("Held() = %v", h)
	}

	// Crashed again, but another owner took the port meanwhile: Release of
	// the stale index must leave the other owner's reservation alone.
	q := freePort(t)
	if err := r.writeIndex("c2", []portspec.Mapping{tcp(q)}); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, r, "c3", tcp(q))
	wantReserveError(t, r, "c2", []portspec.Mapping{tcp(q)}, "already published by container c3")
	if err := r.Release("c2"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]portspec.Mapping{"c1": {tcp(p)}, "c3": {tcp(q)}}
	if got := held(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("Held() = %v, want %v", got, want)
	}

	// A damaged index is reported, naming the file, not silently dropped.
	if err := os.WriteFile(r.indexFile("c4"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Release("c4"); err == nil || !strings.Contains(err.Error(), r.indexFile("c4")+" is damaged") {
		t.Fatalf("Release with a damaged index = %v", err)
	}
}

// The Store's own files, as the tests look at them on disk.
func (r *Registry) ownersDir() string             { return r.store.Path("owners") }
func (r *Registry) tmpDir() string                { return r.store.Path("tmp") }
func (r *Registry) indexFile(owner string) string { return r.store.Path("owners", owner) }
