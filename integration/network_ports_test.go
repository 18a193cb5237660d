package integration

import (
	"strconv"
	"strings"
	"testing"
)

// TestNetPortConflicts checks, for each firewall backend, that a host port
// already published by a container, or used by a host program, cannot be
// published again: create fails naming the port, nothing of the refused
// container is left, and the port's holder still gets its traffic.
func TestNetPortConflicts(t *testing.T) {
	t.Parallel()
	for _, fw := range fwBackends {
		t.Run(fw, func(t *testing.T) {
			t.Parallel()
			h := newNetHost(t)
			netName := "pc" + h.sfx[:4]
			h.createNetwork(netName, "--firewall", fw)

			// Host programs holding a TCP and a UDP port.
			nc := h.background(false, "busybox", "nc", "-l", "-p", "9090")
			udp := h.background(false, h.helper(), "udp-echo", "9091")
			waitFileContains(t, udp.outPath, "listening")
			if !poll(func() bool {
				return strings.Contains(h.mustRun("ss", "-H", "-ltn").stdout, ":9090 ")
			}) {
				t.Fatalf("control: the host program %v never listened on TCP 9090", nc.cmd.Args)
			}

			for _, tc := range []struct {
				name    string
				holder  string // what a first container publishes ("" for a host program)
				proto   string // the holder's protocol
				publish string // what the refused container publishes
				port    string // the clashing host port, which the error must name
			}{
				{"TCP port of another container", "8080:80", "tcp", "8080:80", "8080"},
				{"same port on 127.0.0.1 as another container's on every address", "8081:80", "tcp", "127.0.0.1:8081:80", "8081"},
				{"UDP port of another container", "5353:53/udp", "udp", "5353:53/udp", "5353"},
				{"second port of a range", "8087:80", "tcp", "8086-8087:80-81", "8087"},
				{"TCP port of a host program", "", "tcp", "9090:80", "9090"},
				{"UDP port of a host program", "", "udp", "9091:53/udp", "9091"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h := h.withT(t)
					var check func(string, func(*testing.T, netSide, string, int, string, string))
					if tc.holder != "" {
						tok := token()
						h.start(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", tc.holder}, args: webServer, files: webFiles(tok)})
						port, _ := strconv.Atoi(strings.Split(tc.holder, ":")[0])
						check = func(what string, try func(*testing.T, netSide, string, int, string, string)) {
							t.Helper()
							if tc.proto == "udp" {
								wantUDP(t, h.otherSide(), hostAddr, port, what+": the holder's UDP port")
							} else {
								try(t, h.otherSide(), hostAddr, port, tok, what+": the holder's TCP port")
							}
						}
						check("control, before the clash", wantTCP)
					}
					before := h.vethsOnHost()
					bundle := h.bundle(netCtr{spec: []string{"--network", "bridge:" + netName, "--publish", tc.publish}})
					id, r := h.tryStart(bundle)
					wantFail(t, r, "publishing "+tc.publish)
					wantContains(t, r.combined(), tc.port, "the error of a clashing publish names the port")
					h.assertGone("after a refused publish", id)
					h.assertNoNetLeftovers("after a refused publish", id, "")
					if after := h.vethsOnHost(); len(after) != len(before) {
						t.Errorf("after a refused publish: expected the veths %v, got %v", before, after)
					}
					if check != nil {
						// Undoing the refused container must not touch the holder's ports.
						check("after the refused publish of "+tc.publish, wantTCPNow)
					}
				})
			}
			if in := h.inspect(netName); len(in.Containers) != 0 {
				t.Errorf("inspect after the cases: expected no container attached, got %+v", in.Containers)
			}
		})
	}
}
