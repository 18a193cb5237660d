package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNetModes checks the non-bridge modes: host, none and container:ID.
func TestNetModes(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)
	record := func(id string) string { return filepath.Join(h.netRoot, "containers", id+".json") }

	t.Run("host", func(t *testing.T) {
		h := h.withT(t)
		name := "hostmode-" + h.sfx
		bundle := h.bundle(netCtr{spec: []string{"--network", "host", "--hostname", name}})
		id, r := h.tryStart(bundle)
		if r.code != 0 {
			t.Fatalf("run -d with --network host: %s", r)
		}
		addrs := h.mustExec(id, "ip", "-o", "addr").stdout
		wantContains(t, addrs, h.hostVeth, "--network host: the container sees the test host's link to the other host")
		wantContains(t, addrs, "inet "+hostAddr+"/24", "--network host: the container sees the test host's address")
		if got := h.readRootfs(bundle, "etc/hostname"); got != name+"\n" {
			t.Errorf("--network host: /etc/hostname: expected %q, got %q", name+"\n", got)
		}
		if want, err := os.ReadFile("/etc/hosts"); err == nil {
			if got := h.readRootfs(bundle, "etc/hosts"); got != string(want) {
				t.Errorf("--network host: expected /etc/hosts to be the host's %q, got %q", want, got)
			}
		}
		if _, err := os.Stat(record(id)); err != nil {
			t.Errorf("--network host: expected a network record for %s while it runs: %v", id, err)
		}
		if v := h.vethsOnHost(); len(v) != 0 {
			t.Errorf("--network host: expected no veth to be made, got %v", v)
		}
		h.mustBerth("delete", "-f", id)
		h.assertNoNetLeftovers("--network host, after delete", id, "")
	})

	t.Run("none", func(t *testing.T) {
		h := h.withT(t)
		name := "nonemode-" + h.sfx
		bundle := h.bundle(netCtr{spec: []string{"--network", "none", "--hostname", name}})
		id, r := h.tryStart(bundle)
		if r.code != 0 {
			t.Fatalf("run -d with --network none: %s", r)
		}
		links := strings.TrimSpace(h.mustExec(id, "ip", "-o", "link").stdout)
		if lines := strings.Split(links, "\n"); len(lines) != 1 || !strings.Contains(lines[0], ": lo:") || !strings.Contains(lines[0], "UP") {
			t.Errorf("--network none: expected only lo, up, got %q", links)
		}
		wantContains(t, h.mustExec(id, "ip", "-o", "-4", "addr").stdout, "inet 127.0.0.1/8", "--network none: lo has 127.0.0.1")
		wantContains(t, h.readRootfs(bundle, "etc/hosts"), "127.0.1.1\t"+name, "--network none: /etc/hosts names the container on loopback")
		tok := token()
		// A server inside the container's namespace, started from the host side.
		h.background(false, "nsenter", "--net=/proc/"+strconv.Itoa(h.pid(id))+"/ns/net", "busybox", "sh", "-c", "echo "+tok+" | busybox nc -l -p 7001")
		wantTCP(t, h.in(id), "127.0.0.1", 7001, tok, "--network none: loopback works inside")
		h.mustBerth("delete", "-f", id)
		h.assertNoNetLeftovers("--network none, after delete", id, "")
	})

	t.Run("container", func(t *testing.T) {
		h := h.withT(t)
		netName := "cm" + h.sfx[:4]
		h.createNetwork(netName)
		tok := token()
		target := h.start(netCtr{
			spec:  []string{"--network", "bridge:" + netName, "--hostname", "target-" + h.sfx},
			args:  []string{"httpd", "-f", "-p", "7000", "-h", "/www"},
			files: webFiles(tok),
		})
		addr := h.addrOf(netName, target)
		joinBundle := h.bundle(netCtr{spec: []string{"--network", "container:" + target}})
		joiner, r := h.tryStart(joinBundle)
		if r.code != 0 {
			t.Fatalf("run -d with --network container:%s: %s", target, r)
		}
		wantContains(t, h.mustExec(joiner, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout, "inet "+addr+"/",
			"--network container:ID: the joiner has the target's eth0 and address")
		wantTCP(t, h.in(joiner), "127.0.0.1", 7000, tok, "--network container:ID: a server of the target at 127.0.0.1 from the joiner")
		wantContains(t, h.readRootfs(joinBundle, "etc/hosts"), addr+"\t", "--network container:ID: /etc/hosts has the target's address")
		if in := h.inspect(netName); len(in.Containers) != 1 {
			t.Errorf("--network container:ID: expected only the target on the network, inspect shows %+v", in.Containers)
		}
		h.mustBerth("delete", "-f", joiner)
		h.assertNoNetLeftovers("--network container:ID, after deleting the joiner", joiner, "")
		wantTCP(t, h.hostSide(), addr, 7000, tok, "the target after the joiner is deleted")
	})

	t.Run("container that does not exist", func(t *testing.T) {
		h := h.withT(t)
		dir := h.mkdir("bundle")
		r := h.berth("spec", "-b", dir, "--network", "container:nosuch")
		wantFail(t, r, "berth spec --network container:nosuch")
		wantContains(t, r.combined(), "nosuch", "the error names the missing container")
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
			t.Errorf("berth spec --network container:nosuch failed but wrote %s", filepath.Join(dir, "config.json"))
		}
	})
}
