package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
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
	var out []throughputResult
	for _, p := range paths {
		args := []string{"iperf3", "-c", p.addr, "-p", strconv.Itoa(p.port), "-t", strconv.Itoa(seconds), "-J"}
		if p.ns != "" {
			args = append([]string{"nsenter", "--net=" + p.ns}, args...)
		}
		data, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			return out, fmt.Errorf("%s: iperf3: %v: %s", p.name, err, data)
		}
		var rep struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal(data, &rep); err != nil || rep.End.SumReceived.BitsPerSecond == 0 {
			return out, fmt.Errorf("%s: iperf3 report: %v", p.name, err)
		}
		out = append(out, throughputResult{p.name, rep.End.SumReceived.BitsPerSecond / 1e9})
	}
	return out, nil
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
