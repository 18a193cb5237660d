// Package netcontract is what berth and berth-net agree on, in one place:
// the name of the network binary, where its state lives and how to move
// it, and how it reports an error. berth imports only this of berth-net's
// side, so that it stays free of netlink and firewall code (libcontainer
// re-executes berth for every container's init and pays for its size).
package netcontract

import "strings"

// Binary is berth-net's file name; berth looks for it beside itself.
const Binary = "berth-net"

// DefaultRoot holds all network state unless RootEnv says otherwise.
const DefaultRoot = "/run/berth/net"

// RootEnv moves the network state, for berth-net, `berth spec` and
// `berth network` alike, so tests and users can keep separate worlds.
const RootEnv = "BERTH_NET_ROOT"

// EnvPrefix starts every variable that changes berth-net's behaviour;
// `berth spec` pins them all into the hooks when RootEnv is set.
const EnvPrefix = "BERTH_NET_"

// ErrorPrefix starts the one line berth-net writes to stderr when it fails.
const ErrorPrefix = Binary + ": "

// Root is the network state directory: RootEnv's value from getenv, or
// DefaultRoot.
func Root(getenv func(string) string) string {
	if r := getenv(RootEnv); r != "" {
		return r
	}
	return DefaultRoot
}

// Message is the error berth-net reported in out (its combined output),
// without the prefix, for a caller to show as its own.
func Message(out []byte) string {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), ErrorPrefix))
}
