package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// gcReport is `berth gc`'s JSON.
type gcReport struct {
	Containers []string `json:"containers"`
	Leases     []string `json:"leases"`
	Ports      []string `json:"ports"`
	Links      []string `json:"links"`
}

func (h *netHost) gc() gcReport {
	h.t.Helper()
	r := h.mustBerth("gc")
	var rep gcReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		h.t.Fatalf("berth gc: expected a JSON report, got %v in %s", err, r)
	}
	return rep
}

// withoutPoststop drops the berth-net teardown hook, as if the container's
// runtime had crashed before running it.
func withoutPoststop(s *specs.Spec) { s.Hooks.Poststop = nil }

// TestNetGC checks, for each firewall backend, that `berth gc` releases
// what containers that no longer run left behind (record, lease, ports,
// rules), leaves running containers alone, and is a no-op the second time.
func TestNetGC(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			h := newNetHost(t)
			netName := "gc" + h.sfx[:4]
			h.createNetwork(netName, "--firewall", fw)
			record := func(id string) string { return filepath.Join(h.netRoot, "containers", id+".json") }

			// A container deleted without its teardown hook.
			lost := h.start(netCtr{
				spec: []string{"--network", "bridge:" + netName, "--publish", "7070:80", "--publish", "7071:53/udp"},
				mods: []func(*specs.Spec){withoutPoststop},
			})
			lostAddr := h.addrOf(netName, lost)
			// A container whose init was killed (SIGKILL) and not deleted.
			killed := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", "7073:80"}})
			killedAddr := h.addrOf(netName, killed)
			// A running container, which gc must leave alone.
			tok := token()
			live := h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", "7072:80"}, args: webServer, files: webFiles(tok)})
			liveAddr := h.addrOf(netName, live)
			wantTCP(t, h.otherSide(), hostAddr, 7072, tok, "control: the running container before gc")

			h.mustBerth("delete", "-f", lost)
			h.assertGone("after delete without the teardown hook", lost)
			if _, err := os.Stat(record(lost)); err != nil {
				t.Fatalf("precondition: without its poststop hook, delete should leave %s's network record, stat: %v", lost, err)
			}
			if err := syscall.Kill(h.pid(killed), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if !poll(func() bool {
				r := h.berth("state", killed)
				return strings.Contains(r.stdout, `"stopped"`)
			}) {
				t.Fatalf("the SIGKILLed container %s never stopped: %s", killed, h.berth("state", killed))
			}

			rep := h.gc()
			for _, id := range []string{lost, killed} {
				if !slices.Contains(rep.Containers, id) {
					t.Errorf("berth gc: expected the report to list %s among the containers released, got %+v", id, rep)
				}
			}
			if slices.Contains(rep.Containers, live) {
				t.Errorf("berth gc: expected the running container %s to be left alone, the report lists it: %+v", live, rep)
			}
			h.assertNoNetLeftovers("after gc", lost, lostAddr, 7070, 7071)
			h.assertNoNetLeftovers("after gc", killed, killedAddr, 7073)

			if _, err := os.Stat(record(live)); err != nil {
				t.Errorf("after gc: expected the running container's record to stay: %v", err)
			}
			wantTCP(t, h.otherSide(), hostAddr, 7072, tok, "the running container after gc")
			if got := h.addrOf(netName, live); got != liveAddr {
				t.Errorf("after gc: expected the running container to keep %s, inspect shows %s", liveAddr, got)
			}

			again := h.gc()
			if len(again.Containers)+len(again.Leases)+len(again.Ports)+len(again.Links) != 0 {
				t.Errorf("a second berth gc: expected nothing to release, got %+v", again)
			}
			// The killed container is still the runtime's: delete it; its
			// teardown finds nothing left to undo.
			h.mustBerth("delete", killed)
			h.assertGone("after deleting the gc'd container", killed)
			if in := h.inspect(netName); len(in.Containers) != 1 || in.Containers[0].ID != live {
				t.Errorf("inspect after gc: expected only %s attached, got %+v", live, in.Containers)
			}
		})
	}
}
