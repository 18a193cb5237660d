// Package crashpoint lets tests kill berth or berth-net at a named step,
// to prove that whatever a crash leaves behind is cleaned up by
// `berth delete -f` and `berth gc`.
//
// In ordinary builds Hit does nothing and costs nothing. Built with the
// `crashpoints` tag, Hit(name) sends SIGKILL to the calling process when
// the environment variable BERTH_CRASH_AT equals name: a real, unclean
// death at exactly that step, as a power cut or the OOM killer would cause.
// With BERTH_CRASH_PARENT=1 as well, the parent is killed first: for
// berth-net run as a hook, that is berth, so nobody is left to undo the
// hook's half-done work (what a power cut does), and only gc can.
//
// The points, in the order a container meets them (integration/crash_test.go
// kills at each):
//
//	create.statedir                 berth: libcontainer made the state dir
//	create.hooks.temp               berth: berth-hooks.json is written under its
//	                                temporary name, not renamed yet
//	create.recovery.temp            berth: berth-recovery.json likewise
//	net.state.temp                  berth-net: a state file (the record) is written
//	                                under its temporary name, not renamed yet
//	net.setup.record                berth-net: the record is written, nothing made
//	fw.iptables.chains              iptables: berth's chains exist, no jumps yet
//	fw.iptables.network-rule.N      iptables: the network's rules 0..N are in
//	net.setup.network-rules         the network's rules are in, no bridge yet
//	net.setup.bridge-unmarked       the bridge exists, not yet marked as this root's
//	net.setup.bridge                the bridge is marked, up and addressed
//	net.setup.lease-index           ipam: the owner index is written, no lease
//	net.setup.lease                 the address is leased
//	net.setup.ports-index           ports: the owner index is written, no port file
//	net.setup.ports                 the host ports are reserved
//	net.setup.veth-unmarked         the veth pair exists, its host end not yet marked
//	net.setup.veth                  the veth pair exists: bt<hash> on the bridge,
//	                                eth0 in the container's namespace
//	net.setup.address               eth0 has its address
//	net.setup.route                 the default route is in
//	net.setup.publish               the DNAT rules are in
//	create.started                  berth: the init runs, state.json is saved;
//	                                no pid file or poststart yet
//	delete.killed                   berth delete -f: the init is dead
//	delete.destroyed                cgroups and state are gone, no poststop yet
//	net.teardown.unpublish          berth-net teardown: DNAT rules removed
//	net.teardown.veth               the veth pair is deleted
//	net.teardown.ports              the host ports are released
//
// and in `berth network reload` (TestNetReloadCrash):
//
//	net.reload.restored             a link, address or sysctl is restored
//	fw.reconcile.restored           a firewall group (berth's chains, one
//	                                network's rules, one container's ports)
//	                                is restored
package crashpoint

// EnvVar names the step to die at, in builds with the crashpoints tag.
const EnvVar = "BERTH_CRASH_AT"

// ParentEnvVar, set to 1, makes Hit kill the parent process too.
const ParentEnvVar = "BERTH_CRASH_PARENT"

// TraceEnvVar, set to 1 or to a file name, makes Hit print (on stderr, or
// append to that file) the time each point is reached (crashpoints builds
// only): bench/README.md's per-step figures come from it.
const TraceEnvVar = "BERTH_CRASH_TRACE"
