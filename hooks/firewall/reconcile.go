package firewall

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-runtime/berth/hooks/drift"
)

// Reconciling: berth writes a network's rules when its bridge is first made
// and a container's port map when the container starts, and never looks at
// them again. Whatever removes them behind berth's back (`nft flush
// ruleset`, `iptables -F`, a firewalld reload) leaves the networks and
// published ports broken until they are made again. Reconcile is how:
// given what berth's records call for, each backend builds the objects
// with the same functions that SetupNetwork and AddPorts use, compares
// them with what the kernel holds, and reports, or restores, the
// difference. One pass for both `berth network check` (report) and
// `berth network reload` (repair), so the two never disagree.

// Desired is the firewall state that berth's records call for in one
// backend: the networks whose bridges were made, and the published ports
// of the containers that run on them.
type Desired struct {
	Networks  []Network
	Endpoints []Endpoint
}

// Drift is one object of berth's firewall state that the kernel lacks,
// named as the backend's own tool names it and followed by whose it is.
type Drift = drift.Drift

// beginReconcile checks want (validateDesired) and takes the firewall lock
// for a backend's Reconcile; run is false when want has no network, and
// there is nothing to compare.
func beginReconcile(want Desired) (unlock func(), run bool, err error) {
	if err := validateDesired(want); err != nil {
		return nil, false, err
	}
	if len(want.Networks) == 0 {
		return nil, false, nil
	}
	unlock, err = lockNetworks()
	if err != nil {
		return nil, false, err
	}
	return unlock, true, nil
}

// validateDesired checks every network and endpoint as setup would, and
// that each endpoint's network is among the networks: its ports need that
// network's rules.
func validateDesired(want Desired) error {
	for _, n := range want.Networks {
		if err := ValidateNetwork(n); err != nil {
			return err
		}
	}
	for _, e := range want.Endpoints {
		if err := validatePublish(e); err != nil {
			return err
		}
		if !slices.Contains(want.Networks, e.Network) {
			return fmt.Errorf("firewall: container %s: its network %q is not among the networks to reconcile", e.ContainerID, e.Network.Name)
		}
	}
	return nil
}

// ofNetwork and ofContainer say whose an object is, in drift lines.
func ofNetwork(n Network) string    { return " (network " + n.Name + ")" }
func ofContainer(e Endpoint) string { return " (container " + e.ContainerID + ")" }

// quoteArgs joins rule arguments as a shell would need them.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = fmt.Sprintf("%q", a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
