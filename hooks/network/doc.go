// Package network gives a container Docker-style networking from OCI hooks,
// with no daemon: berth-net runs once when the container is created (the
// createRuntime hook, `berth-net setup`) and once when it is deleted
// (poststop, `berth-net teardown`), and keeps everything it needs between
// the two on disk under Root(). Nothing runs in between.
//
// # Setup of a bridge container
//
// Read it with setup.go open: Setup checks the options (options.go), reads
// config.json for the hostname and rootfs (bundle.go), refuses a container
// that already has a record or shares the host's network namespace, and
// hands a bridge container to setupBridge, which does what `docker run -p`
// does, in this order. Each kernel step is one function in kernel.go,
// whose comment gives the ip(8) or sysctl(8) command it stands for; the
// name in brackets is the crash point (internal/crashpoint) right after
// the step, where the crash matrix kills berth-net to prove that teardown
// and gc undo exactly what was made.
//
//  1. Write the container's record (record.go): its network, bridge,
//     firewall backend, veth name and port maps, before any of them exists
//     [net.setup.record]. Mark the network's definition SetUp, so that
//     `network reload` knows its bridge and rules are meant to exist.
//  2. The first container of a network makes the network (ensureBridge,
//     under the root lock and the namespace's links lock, which roots
//     sharing a namespace share): net.ipv4.ip_forward=1
//     (enableForwarding); the network's own firewall rules, masquerade of
//     the subnet and the forwarding and isolation rules
//     (firewall.Backend.SetupNetwork) [net.setup.network-rules]; then the
//     bridge itself (createBridge: ip link add berth0 type bridge
//     [net.setup.bridge-unmarked], marked with its root and network as the
//     link's alias (owner.go), brought up, given
//     net.ipv4.conf.berth0.route_localnet=1 so that the host reaches
//     published ports at 127.0.0.1, and last the gateway address,
//     10.77.0.1/16 for the default network). The marked bridge with its gateway says all of this was
//     done, so the address comes last; a bridge of that name that is not
//     provably this network's is refused [net.setup.bridge].
//  3. Lease an address from the network's pool (package ipam: one file per
//     address, under a flock) [net.setup.lease-index, net.setup.lease], and
//     write it to the record.
//  4. Reserve the published host ports (package ports), which refuses a
//     port another container or a host socket holds
//     [net.setup.ports-index, net.setup.ports].
//  5. Cable the container (connectContainer): one veth pair whose host end
//     btXXXX is born on the bridge and whose other end is born in the
//     container's namespace as eth0, in one netlink message
//     (createVethPair: ip link add btXXXX master berth0 type veth peer name
//     eth0 netns PID; moving a link between namespaces afterwards, as ip(8)
//     users usually do, costs the kernel an RCU grace period)
//     [net.setup.veth-unmarked]; the host end is marked as this root's and
//     gets hairpin on, so a container reaches itself through its own
//     published port [net.setup.veth]. Then, inside the container's namespace: the address
//     on eth0 (addressLink) [net.setup.address], eth0 and lo up (setUp,
//     bringUp), the default route via the gateway (addDefaultRoute; not on
//     an --internal network) [net.setup.route].
//  6. DNAT each published port to the container's address
//     (firewall.Backend.AddPorts), which also deletes the UDP conntrack
//     entries that would keep sending those ports elsewhere
//     [net.setup.publish].
//  7. Write /etc/hostname, /etc/hosts and /etc/resolv.conf into the rootfs
//     (etcfiles.go).
//
// If a step fails, Setup tears down what the record names before it
// returns, in every mode. The other modes are short: host writes the record
// and the /etc files; none brings up lo in the container's own namespace
// (bringUpLoopback); container:ID checks that the container was created in
// ID's namespace (joinContainer, container.go) and writes an /etc/hosts
// with ID's address.
//
// # Teardown
//
// Teardown (teardown.go) undoes what the record names, in reverse: the
// DNAT of the ports the container holds in the registry (another
// container's rule for a port this one failed to get stays)
// [net.teardown.unpublish], the veth pair (deleting the host end takes eth0
// with it; only a veth marked as this root's) [net.teardown.veth], the port
// reservation [net.teardown.ports] and the lease; then the record goes.
// Whatever is already gone is skipped, so teardown works after a crash,
// without the container's namespace, and twice in a row. The bridge and the
// network's rules stay until `berth network rm` or `prune`
// (manage.go: removeNetworkLocked).
//
// # gc
//
// GC (manage.go) tears down the records whose init has exited (same pid and
// start time, Record.running), then releases the leases and port
// reservations that no record names and deletes the btXXXX veths of this
// root (marked as its own, or attached to one of its bridges) that no
// record names: what a crash between the kernel's work
// and the record's leaves. It removes nothing it cannot prove is its own
// and dead: if any record cannot be read, gc stops before it deletes
// anything; a lease or reservation whose owner's record exists stays.
//
// # Reload and check
//
// Steps 2 and 6 are done once, but the kernel may lose their results later
// (a firewall flush, a bridge deleted by hand). Reconcile (reload.go)
// rebuilds from the definitions and records what steps 2, 5 (the host end)
// and 6 should have left, for every SetUp network and every running
// container, compares it with the kernel, and reports (`berth network
// check`) or restores (`berth network reload`) what is missing, with the
// same functions setup uses [net.reload.restored].
package network
