// Package network gives a container Docker-style networking from OCI hooks,
// with no daemon: berth-net runs once when the container is created (the
// createRuntime hook) and once when it is deleted (poststop), and keeps
// everything it needs between the two on disk under Root().
//
// For a container on a bridge network, setup does what `docker run -p`
// does, one kernel step per function in kernel.go, in this order:
//
//  1. create the bridge (ip link add berth0 type bridge) and give it the
//     gateway address (ip addr add 10.88.0.1/16 dev berth0);
//  2. create a veth pair (ip link add btXXXX type veth peer name tmpXXXX),
//     attach one end to the bridge and move the other into the container's
//     network namespace, where it is renamed eth0;
//  3. address eth0 from the network's pool (ipam) and bring it up;
//  4. add the default route via the gateway;
//  5. masquerade the subnet's outbound traffic and DNAT each published
//     port to the container (package firewall).
//
// Every object made is first written to the container's record, so that
// teardown (and gc, after a crash) can undo exactly what was made, even
// when the container's namespace is already gone.
package network
