package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// stubResolv writes a resolv.conf naming only systemd-resolved's loopback
// stub and an upstream one naming 192.0.2.53, and returns the environment
// that points berth-net at them.
func (h *netHost) stubResolv() []string {
	stub := h.writeFile("resolv.conf", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch bt.test\n")
	upstream := h.writeFile("resolv.conf", "nameserver 192.0.2.53\nsearch bt.test\n")
	return []string{"BERTH_NET_RESOLV_CONF=" + stub, "BERTH_NET_UPSTREAM_RESOLV_CONF=" + upstream}
}

func wantUpstreamResolv(t *testing.T, got, what string) {
	t.Helper()
	if !strings.Contains(got, "nameserver 192.0.2.53") || strings.Contains(got, "127.0.0.53") {
		t.Errorf("%s: expected /etc/resolv.conf to name the stub's upstream 192.0.2.53 and not the host's loopback stub 127.0.0.53, got %q", what, got)
	}
}

// TestNetHandWrittenHooks checks that a config.json written by hand with
// berth-net's hooks (no env of their own: they inherit berth's, and with
// it BERTH_NET_ROOT and the resolv.conf paths) networks the container, with
// setup listed under createRuntime or under the deprecated prestart.
func TestNetHandWrittenHooks(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"createRuntime", "prestart"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			h := newNetHost(t)
			tok := token()
			rootfs := h.rootfsWith(webFiles(tok))
			bundle := h.env.bundle(func(s *specs.Spec) {
				s.Root = &specs.Root{Path: rootfs, Readonly: true}
				s.Process.Args = webServer
				s.Hostname = "hand-" + h.sfx
				addHook(s, stage, specs.Hook{Path: h.netBin(), Args: []string{"berth-net", "setup", "--network", "bridge", "--publish", "8080:80", "--publish", "5353:53/udp"}})
				addHook(s, "poststop", specs.Hook{Path: h.netBin(), Args: []string{"berth-net", "teardown"}})
			})
			id := h.newID()
			if r := h.berthEnv(h.stubResolv(), "run", "-d", "-b", bundle, id); r.code != 0 {
				t.Fatalf("run -d with hand-written %s and poststop hooks: %s", stage, r)
			}
			in := h.inspect("bridge")
			if len(in.Containers) != 1 || in.Containers[0].ID != id {
				t.Fatalf("inspect bridge (the default network): expected %s attached, got %+v", id, in.Containers)
			}
			addr := in.Containers[0].Address
			wantTCP(t, h.otherSide(), hostAddr, 8080, tok, "hand-written hooks: the published port from the other host")
			wantUDP(t, h.hostSide(), "127.0.0.1", 5353, "hand-written hooks: the published UDP port from the host")
			wantContains(t, h.readRootfs(bundle, "etc/hosts"), addr+"\thand-"+h.sfx, "hand-written hooks: /etc/hosts has the spec's hostname")
			wantUpstreamResolv(t, h.mustExec(id, "cat", "/etc/resolv.conf").stdout, "hand-written hooks, host resolver is a loopback stub")

			h.mustBerth("delete", "-f", id)
			h.assertGone("hand-written hooks, after delete", id)
			h.assertNoNetLeftovers("hand-written hooks, after delete", id, addr, 8080, 5353)
			h.mustBerth("network", "rm", "bridge")
			h.assertNetworkGone(in, true)
		})
	}
}

// TestNetResolvConf checks what berth-net puts into /etc/resolv.conf when
// the host's resolv.conf names only a loopback stub resolver.
func TestNetResolvConf(t *testing.T) {
	t.Parallel()
	h := newNetHost(t)

	t.Run("stub with upstream", func(t *testing.T) {
		h := h.withT(t)
		bundle := h.bundle(netCtr{spec: []string{"--network", "bridge"}, hookEnv: h.stubResolv()})
		id, r := h.tryStart(bundle)
		if r.code != 0 {
			t.Fatalf("run -d: %s", r)
		}
		wantUpstreamResolv(t, h.readRootfs(bundle, "etc/resolv.conf"), "host resolver is a loopback stub with an upstream file")
		h.mustBerth("delete", "-f", id)
	})

	t.Run("stub without upstream", func(t *testing.T) {
		h := h.withT(t)
		env := h.stubResolv()
		env[1] = "BERTH_NET_UPSTREAM_RESOLV_CONF=" + filepath.Join(h.base, "missing")
		bundle := h.bundle(netCtr{spec: []string{"--network", "bridge"}, hookEnv: env})
		id, r := h.tryStart(bundle)
		if r.code != 0 {
			t.Fatalf("run -d: %s", r)
		}
		got := h.readRootfs(bundle, "etc/resolv.conf")
		if len(nameserverLines(got)) > 0 {
			t.Errorf("host resolver is a loopback stub without upstream: expected no nameserver line (the stub is unreachable from the container), got %q", got)
		}
		wantContains(t, got, "search bt.test", "the search domains are kept")
		h.mustBerth("delete", "-f", id)
	})

	// `berth spec` pins BERTH_NET_ROOT into the hooks' env; the resolv.conf
	// variables given to berth spec (and to berth run) should reach the
	// hook as well.
	t.Run("berth spec env", func(t *testing.T) {
		h := h.withT(t)
		stub := h.stubResolv()
		bundle := h.bundle(netCtr{spec: []string{"--network", "bridge"}, specEnv: stub, keepHookEnv: true})
		data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(data)
		id := h.newID()
		if r := h.berthEnv(stub, "run", "-d", "-b", bundle, id); r.code != 0 {
			t.Fatalf("run -d: %s", r)
		}
		got := h.readRootfs(bundle, "etc/resolv.conf")
		if !strings.Contains(got, "nameserver 192.0.2.53") {
			t.Errorf("config.json from `berth spec` run with %v: expected the container to get the stub's upstream 192.0.2.53, got %q (createRuntime hooks: %s; a hook with an env of its own does not inherit berth's)",
				stub, got, hookEnvOf(cfg))
		}
		h.mustBerth("delete", "-f", id)
	})
}

// hookEnvOf shows the env of a config.json's createRuntime hooks.
func hookEnvOf(cfg string) string {
	var s specs.Spec
	if err := json.Unmarshal([]byte(cfg), &s); err != nil || s.Hooks == nil {
		return "(no hooks)"
	}
	var out []string
	for _, hk := range s.Hooks.CreateRuntime {
		out = append(out, fmt.Sprintf("%s: env %q", hk.Path, hk.Env))
	}
	return strings.Join(out, "; ")
}

func nameserverLines(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "nameserver" {
			out = append(out, l)
		}
	}
	return out
}
