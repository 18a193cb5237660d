// Package portspec parses Docker's -p/--publish syntax into port mappings:
// [hostIP:]hostPort[-end]:containerPort[-end][/tcp|/udp].
package portspec

import "net/netip"

// Mapping publishes one container port on one host port.
type Mapping struct {
	// HostIP is the host address the port is published on; the zero Addr
	// (not valid) means every address of the host.
	HostIP        netip.Addr `json:"hostIP,omitzero"`
	HostPort      uint16     `json:"hostPort"`
	ContainerPort uint16     `json:"containerPort"`
	Protocol      string     `json:"protocol"` // "tcp" or "udp"
}
