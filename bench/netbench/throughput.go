package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

// throughput measures TCP throughput with iperf3 (3 s per path, one
// stream) into a bridge container: from the host through its published
// port (DNAT, at the host's 127.0.0.1 and at the bridge's address), from
// the host straight to the container's address (the same veth, no map),
// and from a sibling container over the bridge. The iperf3 server and
// client run in the stand-ins' network namespaces through nsenter(1).
type throughputResult struct {
	Path string  `json:"path"`
	Gbps float64 `json:"gbps"`
}

const iperfPort, iperfHostPort = 5201, 25201

func (b *bench) throughput(bn *berthNet, seconds int) ([]throughputResult, error) {
	srv, err := b.newStandIn("iperf-server")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	cli, err := b.newStandIn("iperf-client")
	if err != nil {
		return nil, err
	}
	defer cli.stop()
	for _, s := range []*standIn{srv, cli} {
		args := []string{"setup", "--network", "bridge:" + bn.network}
		if s == srv {
			args = append(args, "--publish", fmt.Sprintf("%d:%d", iperfHostPort, iperfPort))
		}
		if _, _, _, err := timed(bn.cmd(state(s), args...)); err != nil {
			return nil, err
		}
		defer timed(bn.cmd(state(s), "teardown"))
	}
	srvAddr, gw, err := bn.addresses(srv.id)
	if err != nil {
		return nil, err
	}
	server := exec.Command("nsenter", "--net="+srv.netnsPath(), "iperf3", "-s", "-p", strconv.Itoa(iperfPort))
	if err := server.Start(); err != nil {
		return nil, fmt.Errorf("iperf3 server: %w", err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	time.Sleep(300 * time.Millisecond) // let it listen

	paths := []struct {
		name, ns, addr string
		port           int
	}{
		{"host -> container, direct (veth, no map)", "", srvAddr.String(), iperfPort},
		{"host -> container, port map at 127.0.0.1", "", "127.0.0.1", iperfHostPort},
		{"host -> container, port map at bridge address", "", gw.String(), iperfHostPort},
		{"container -> container over the bridge", cli.netnsPath(), srvAddr.String(), iperfPort},
	}
	// Paths taken in turn, throughputRounds times (A B C D A B C D ...), and
	// the median kept: one iperf3 run on a shared 2-core machine varies by
	// 10-20 %, and taking the paths one after another would put any
	// change in the machine's load on one of them.
	gbps := make([][]float64, len(paths))
	for range throughputRounds {
		for i, p := range paths {
			args := []string{"iperf3", "-c", p.addr, "-p", strconv.Itoa(p.port), "-t", strconv.Itoa(seconds), "-J"}
			if p.ns != "" {
				args = append([]string{"nsenter", "--net=" + p.ns}, args...)
			}
			g, err := iperf(args)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			gbps[i] = append(gbps[i], g)
		}
	}
	var out []throughputResult
	for i, p := range paths {
		slices.Sort(gbps[i])
		out = append(out, throughputResult{p.name, gbps[i][len(gbps[i])/2]})
	}
	return out, nil
}

// throughputRounds is how many times each path is measured.
const throughputRounds = 3

// iperf runs an iperf3 client (args) and returns the Gbit/s it received.
func iperf(args []string) (float64, error) {
	data, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		return 0, fmt.Errorf("iperf3: %v: %s", err, data)
	}
	var rep struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(data, &rep); err != nil || rep.End.SumReceived.BitsPerSecond == 0 {
		return 0, fmt.Errorf("iperf3 report: %v", err)
	}
	return rep.End.SumReceived.BitsPerSecond / 1e9, nil
}

// addresses reads the container's address and its network's gateway
// from `berth-net network inspect`.
func (bn *berthNet) addresses(id string) (addr, gateway netip.Addr, err error) {
	_, _, data, err := timed(bn.cmd(nil, "network", "inspect", bn.network))
	if err != nil {
		return addr, gateway, err
	}
	var in struct {
		Gateway    netip.Addr `json:"gateway"`
		Containers []struct {
			ID      string     `json:"id"`
			Address netip.Addr `json:"address"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return addr, gateway, fmt.Errorf("network inspect: %w", err)
	}
	for _, c := range in.Containers {
		if c.ID == id {
			return c.Address, in.Gateway, nil
		}
	}
	return addr, gateway, fmt.Errorf("network inspect: %s not attached", id)
}
