// Package network gives a container Docker-style networking from OCI hooks,
// with no daemon: berth-net runs once when the container is created (the
// createRuntime hook) and once when it is deleted (poststop), and keeps
// everything it needs between the two on disk under Root().
//
// For a container on a bridge network, setup does what `docker run -p`
// does, one kernel step per function in kernel.go, in this order:
//
//  1. create the bridge (ip link add berth0 type bridge), mark it as this
//     root's network's (ip link set berth0 alias "berth-net root=ROOT
//     network=NAME"; owner.go) and give it the gateway address (ip addr add
//     10.77.0.1/16 dev berth0); a bridge of that name that is not marked as
//     this network's, or carries another address, is refused;
//  2. create a veth pair whose host end is attached to the bridge and whose
//     other end is born in the container's network namespace as eth0, in
//     one netlink message (ip link add btXXXX master berth0 type veth peer
//     name eth0 netns PID): moving a link between namespaces afterwards, as
//     ip(8) users usually do, costs the kernel an RCU grace period; the host
//     end is marked as this root's too (alias "berth-net root=ROOT"), and gc
//     and teardown delete only veths so marked or attached to the root's
//     bridges;
//  3. address eth0 from the network's pool (ipam) and bring it up;
//  4. add the default route via the gateway;
//  5. masquerade the subnet's outbound traffic and DNAT each published
//     port to the container (package firewall).
//
// Every object made is first written to the container's record, so that
// teardown (and gc, after a crash) can undo exactly what was made, even
// when the container's namespace is already gone. Likewise, before step 1
// the network's definition is marked SetUp.
//
// Steps 1 and 5 are done once, but the kernel may lose their results
// later (a firewall flush, a bridge deleted by hand). Reconcile (reload.go)
// rebuilds from the definitions and records what steps 1 and 5 and the
// host end of step 2 should have left, for every SetUp network and every
// running container, compares it with the kernel, and reports
// (`berth network check`) or restores (`berth network reload`) what is
// missing, with the same functions setup uses.
package network
