package firewall

import (
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
)

// BenchmarkAddRemovePorts measures one container's AddPorts+RemovePorts
// (a TCP and a UDP port) with N other endpoints already published: the cost
// per container must not grow with N.
//
//	go test ./hooks/firewall/ -run '^$' -bench AddRemovePorts -benchtime 50x
func BenchmarkAddRemovePorts(b *testing.B) {
	for _, bc := range backendCases() {
		for _, n := range []int{0, 100, 500} {
			b.Run(fmt.Sprintf("%s/N=%d", bc.name, n), func(b *testing.B) {
				requireLab(b)
				if bc.ipt != "" {
					if _, err := exec.LookPath(bc.ipt); err != nil {
						b.Skipf("%s not installed", bc.ipt)
					}
				}
				fw, err := bc.open()
				if err != nil {
					b.Fatal(err)
				}
				l := newLab(b)
				net := l.addNetwork("front", "br-front", "10.88.0.0/16", false)
				l.do(b, "SetupNetwork", func() error { return fw.SetupNetwork(net) })
				l.do(b, "publish N endpoints", func() error {
					for i := 0; i < n; i++ {
						addr := netip.AddrFrom4([4]byte{10, 88, byte(1 + i/250), byte(1 + i%250)})
						e := endpoint(fmt.Sprintf("c%d", i), net, addr,
							mapping("", uint16(10000+i), 80, "tcp"), mapping("", uint16(20000+i), 53, "udp"))
						if err := fw.AddPorts(e); err != nil {
							return err
						}
					}
					return nil
				})
				e := endpoint("bench", net, netip.MustParseAddr("10.88.255.254"),
					mapping("", 8080, 80, "tcp"), mapping("", 5353, 53, "udp"))
				b.ResetTimer()
				l.do(b, "AddPorts+RemovePorts", func() error {
					for i := 0; i < b.N; i++ {
						if err := fw.AddPorts(e); err != nil {
							return err
						}
						if err := fw.RemovePorts(e); err != nil {
							return err
						}
					}
					return nil
				})
				b.StopTimer()
				l.do(b, "TeardownNetwork", func() error { return fw.TeardownNetwork(net) })
			})
		}
	}
}
