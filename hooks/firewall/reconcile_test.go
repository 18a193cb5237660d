package firewall

import (
	"regexp"
	"strings"
	"testing"
)

// TestReconcile: for each backend, two networks with published ports, then
// each kind of damage a flush or a hand can do; Reconcile without repair
// names what is missing and changes nothing, with repair it brings back
// the traffic, and then finds nothing more to do and changes nothing. A
// foreign table or chain, and a foreign rule in a built-in chain, outlive
// every repair.
func TestReconcile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bc backendCase, l *lab, b Backend) {
		alpha := l.addNetwork("alpha", "br-alpha", "10.88.0.0/16", false)
		beta := l.addNetwork("beta", "br-beta", "10.89.0.0/16", false)
		c1, a1 := l.addContainer(alpha, 2)
		c2, a2 := l.addContainer(beta, 2)
		serve(t, c1, "tcp", 80, "c1")
		serve(t, c1, "udp", 53, "c1")
		serve(t, c2, "tcp", 80, "c2")
		e1 := endpoint("c1", alpha, a1, mapping("", 8080, 80, "tcp"), mapping("", 5353, 53, "udp"), mapping("127.0.0.1", 8081, 80, "tcp"))
		e2 := endpoint("c2", beta, a2, mapping("", 9090, 80, "tcp"))
		want := Desired{Networks: []Network{alpha, beta}, Endpoints: []Endpoint{e1, e2}}
		for _, n := range want.Networks {
			l.do(t, "SetupNetwork "+n.Name, func() error { return b.SetupNetwork(n) })
		}
		for _, e := range want.Endpoints {
			l.do(t, "AddPorts "+e.ContainerID, func() error { return b.AddPorts(e) })
		}
		reconcile := func(t *testing.T, repair bool) []Drift {
			t.Helper()
			var drift []Drift
			l.do(t, "Reconcile", func() (err error) { drift, err = b.Reconcile(want, repair); return err })
			for _, d := range drift {
				if d.Err != nil {
					t.Errorf("Reconcile(repair=%v): %s: %v", repair, d.Object, d.Err)
				}
			}
			return drift
		}
		if d := reconcile(t, false); len(d) != 0 {
			t.Fatalf("right after setup: expected no drift, got %v", d)
		}
		works := func(t *testing.T, when string) {
			t.Helper()
			reach(t, l.other, "tcp", "192.0.2.1:8080", "c1")
			reach(t, l.other, "udp", "192.0.2.1:5353", "c1")
			reach(t, l.other, "tcp", "192.0.2.1:9090", "c2")
			reach(t, l.host, "tcp", "127.0.0.1:8081", "c1")
			if t.Failed() {
				t.Fatalf("%s: the published ports do not answer", when)
			}
		}
		works(t, "after setup")

		ipt := func(t *testing.T, args ...string) { l.host.output(t, bc.ipt, args...) }
		nft := func(t *testing.T, args ...string) { l.host.output(t, "nft", args...) }
		// The user's own rules: a table or chain berth does not own, and a
		// rule in a built-in chain that berth jumps from.
		foreign := []string{}
		addForeign := func(t *testing.T) {
			if bc.ipt != "" {
				ipt(t, "-N", "USER-X")
				ipt(t, "-A", "USER-X", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
				ipt(t, "-A", "FORWARD", "-s", "203.0.113.0/24", "-j", "USER-X")
				foreign = []string{"-A USER-X -p tcp -m tcp --dport 9999 -j ACCEPT", "-A FORWARD -s 203.0.113.0/24 -j USER-X"}
			} else {
				nft(t, "add", "table", "ip", "usertbl")
				nft(t, "add", "chain", "ip", "usertbl", "userchain", "{ type filter hook input priority 0; }")
				nft(t, "add", "rule", "ip", "usertbl", "userchain", "tcp", "dport", "9999", "accept", "comment", `"the user's"`)
				foreign = []string{"table ip usertbl", `tcp dport 9999 accept comment "the user's"`}
			}
		}
		addForeign(t)

		// handleOf finds the handle of the nft rule with comment c in chain ch.
		handleOf := func(t *testing.T, ch, c string) string {
			out := l.host.output(t, "nft", "-a", "list", "chain", "ip", "berth", ch)
			m := regexp.MustCompile(`comment "` + regexp.QuoteMeta(c) + `" # handle (\d+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no rule %q in chain %s:\n%s", c, ch, out)
			}
			return m[1]
		}
		for _, tc := range []struct {
			name   string
			damage func(t *testing.T)
			want   []string // each must appear in some drift line
		}{
			{"everything flushed", func(t *testing.T) {
				if bc.ipt != "" {
					for _, table := range []string{"nat", "filter", "raw"} {
						ipt(t, "-t", table, "-F")
						ipt(t, "-t", table, "-X")
					}
				} else {
					nft(t, "flush", "ruleset")
				}
				addForeign(t)
			}, []string{"(network alpha)", "(network beta)", "(container c1)", "(container c2)", "8080", "5353", "9090", "8081"}},
			{"one rule of a network", func(t *testing.T) {
				if bc.ipt != "" {
					ipt(t, "-D", "BERTH-FORWARD", "-i", "br-alpha", "!", "-o", "br-alpha", "-m", "comment", "--comment", "berth alpha: outbound", "-j", "ACCEPT")
				} else {
					nft(t, "delete", "rule", "ip", "berth", "filter-forward-from__alpha", "handle", handleOf(t, "filter-forward-from__alpha", "outbound"))
				}
			}, []string{"outbound", "(network alpha)"}},
			{"a jump from a built-in chain", func(t *testing.T) {
				if bc.ipt != "" {
					ipt(t, "-t", "nat", "-D", "POSTROUTING", "-j", "BERTH-POSTROUTING")
				} else {
					nft(t, "delete", "rule", "ip", "berth", "nat-POSTROUTING", "handle", handleOf(t, "nat-POSTROUTING", "from a berth bridge to elsewhere: outbound masquerade"))
				}
			}, []string{"POSTROUTING"}},
			{"one published port", func(t *testing.T) {
				if bc.ipt != "" {
					ipt(t, "-t", "nat", "-D", "BERTH-DNAT", "-p", "tcp", "-m", "tcp", "--dport", "9090", "-m", "comment", "--comment", "berth:c2", "-j", "DNAT", "--to-destination", a2.String()+":80")
				} else {
					nft(t, "delete", "element", "ip", "berth", "tcp-any", "{ 9090 }")
				}
			}, []string{"9090", "(container c2)"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.damage(t)
				damaged := l.ruleset(t, bc)
				found := reconcile(t, false)
				var lines []string
				for _, d := range found {
					lines = append(lines, d.Object)
				}
				all := strings.Join(lines, "\n")
				t.Logf("drift:\n%s", all)
				if len(found) == 0 {
					t.Fatalf("after the damage: expected drift, Reconcile found none; ruleset:\n%s", damaged)
				}
				for _, w := range tc.want {
					if !strings.Contains(all, w) {
						t.Errorf("drift report: expected a line naming %q, got:\n%s", w, all)
					}
				}
				if rs := l.ruleset(t, bc); rs != damaged {
					t.Errorf("Reconcile without repair changed the ruleset:\n--- before\n%s\n--- after\n%s", damaged, rs)
				}
				repaired := reconcile(t, true)
				if len(repaired) != len(found) {
					t.Errorf("repair: expected the %d objects found missing, it reports %d:\n%v", len(found), len(repaired), repaired)
				}
				works(t, "after the repair")
				restored := l.ruleset(t, bc)
				if d := reconcile(t, true); len(d) != 0 {
					t.Errorf("a second repair: expected nothing left to restore, got %v", d)
				}
				if rs := l.ruleset(t, bc); rs != restored {
					t.Errorf("a second repair changed the ruleset:\n--- before\n%s\n--- after\n%s", restored, rs)
				}
				for _, f := range foreign {
					if !strings.Contains(restored, f) {
						t.Errorf("the user's %q is gone after the repair:\n%s", f, restored)
					}
				}
			})
		}
	})
}
