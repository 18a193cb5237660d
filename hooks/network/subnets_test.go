package network

import (
	"net/netip"
	"testing"
)

// commonToolRanges are the subnets other container and cluster tools take
// by default (candidateSubnets says whose each is). A berth network in one
// of them would take, with its host route, the traffic of the other
// tool's containers when berth's network comes first.
var commonToolRanges = []string{
	"172.16.0.0/12",  // Docker: docker0 172.17.0.0/16, pools 172.17-31.0.0/16; OpenShift services 172.30
	"192.168.0.0/16", // Docker's /20 pools, Calico, libvirt, VirtualBox, minikube
	"10.0.0.0/16",    // swarm overlays and Cilium's pods start here; VirtualBox NAT 10.0.2.0/24
	"10.1.0.0/16",    // microk8s (Calico)
	"10.4.0.0/16",    // nerdctl
	"10.32.0.0/12",   // Weave
	"10.42.0.0/16",   // k3s pods
	"10.43.0.0/16",   // k3s services
	"10.88.0.0/16",   // podman, containerd's CNI example
	"10.89.0.0/16",   // podman's pools, from 10.89.0.0/24 up
	"10.96.0.0/12",   // kubeadm and kind services
	"10.244.0.0/16",  // flannel, kind pods
}

func TestCandidateSubnetsAvoidCommonTools(t *testing.T) {
	if want := netip.MustParsePrefix("10.77.0.0/16"); DefaultSubnet != want {
		t.Errorf("DefaultSubnet = %s, want %s (the README says so)", DefaultSubnet, want)
	}
	for _, c := range candidateSubnets {
		for _, r := range commonToolRanges {
			if c.Overlaps(netip.MustParsePrefix(r)) {
				t.Errorf("candidate subnet %s overlaps %s, a common tool's default", c, r)
			}
		}
	}
	// The default network, on a host with no route in the way, gets
	// DefaultSubnet; with a host route over it (another tool's network),
	// the next candidate, also clear of the common tools.
	n, err := newNetwork(CreateOptions{Name: DefaultNetwork}, nil, nil)
	if err != nil || n.Subnet != DefaultSubnet || n.Gateway != DefaultSubnet.Addr().Next() || n.Bridge != DefaultBridge {
		t.Errorf("default network on a clear host = %+v, %v: want %s via %s on %s", n, err, DefaultSubnet, DefaultSubnet.Addr().Next(), DefaultBridge)
	}
	n, err = newNetwork(CreateOptions{Name: DefaultNetwork}, nil, []netip.Prefix{netip.MustParsePrefix("10.77.3.0/24")})
	if err != nil || n.Subnet != candidateSubnets[1] {
		t.Errorf("default network with a host route in 10.77.0.0/16 = %+v, %v: want %s", n, err, candidateSubnets[1])
	}
}
