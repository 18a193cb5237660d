package portspec

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxRange caps how many mappings one spec may expand to. Each mapping
// becomes firewall rules and a reservation file; without a cap a typo such
// as "1-60000:1-60000" would quietly create 60000 of each.
const MaxRange = 1024

// Parse parses one Docker -p/--publish spec,
// [hostIP:]hostPort[-end]:containerPort[-end][/tcp|/udp], into one Mapping
// per port. A range pairs host and container ports in order, so both sides
// must hold the same number of ports. The protocol defaults to tcp and is
// accepted in any case. An omitted, empty or 0.0.0.0 host IP means every
// address of the host and is returned as the zero netip.Addr, so that one
// wildcard has one spelling when mappings are compared.
//
// Unlike Docker, the host port is required: berth has no daemon to pick and
// remember an ephemeral port for the container.
func Parse(spec string) ([]Mapping, error) {
	ms, err := parse(spec)
	if err != nil {
		return nil, fmt.Errorf("publish %q: %w", spec, err)
	}
	return ms, nil
}

// ParseAll parses every spec and rejects two mappings that would publish
// the same host port twice: the same protocol and port on the same host IP,
// or on the wildcard and any host IP (the wildcard already covers it).
func ParseAll(specs []string) ([]Mapping, error) {
	type hostPort struct {
		proto string
		port  uint16
	}
	// seen maps a host port to the specs that publish it, by host IP, so a
	// clash can name both specs without scanning all mappings.
	seen := make(map[hostPort]map[netip.Addr]string)
	var all []Mapping
	for _, spec := range specs {
		ms, err := Parse(spec)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			key := hostPort{m.Protocol, m.HostPort}
			byIP := seen[key]
			if byIP == nil {
				byIP = make(map[netip.Addr]string)
				seen[key] = byIP
			}
			if other, clash := clashingSpec(byIP, m.HostIP); clash {
				return nil, fmt.Errorf("publish %q: host port %s is already published by %q",
					spec, describeHostPort(m), other)
			}
			byIP[m.HostIP] = spec
		}
		all = append(all, ms...)
	}
	return all, nil
}

// clashingSpec reports the spec, if any, that already publishes the port
// on ip or on an address overlapping it.
func clashingSpec(byIP map[netip.Addr]string, ip netip.Addr) (string, bool) {
	if s, ok := byIP[ip]; ok {
		return s, true
	}
	if s, ok := byIP[netip.Addr{}]; ok {
		return s, true
	}
	if !ip.IsValid() {
		for _, s := range byIP {
			return s, true
		}
	}
	return "", false
}

// String formats m as Docker's `docker port` does:
// "127.0.0.1:8080->80/tcp", or "8080->80/udp" for the wildcard host IP.
func (m Mapping) String() string {
	return hostSide(m) + "->" + strconv.Itoa(int(m.ContainerPort)) + "/" + m.Protocol
}

// describeHostPort names the host side of m for messages: "8080/tcp" or
// "127.0.0.1:8080/tcp".
func describeHostPort(m Mapping) string {
	return hostSide(m) + "/" + m.Protocol
}

// hostSide formats the host address and port of m: "8080" or
// "127.0.0.1:8080".
func hostSide(m Mapping) string {
	port := strconv.Itoa(int(m.HostPort))
	if m.HostIP.IsValid() {
		return m.HostIP.String() + ":" + port
	}
	return port
}

func parse(spec string) ([]Mapping, error) {
	if spec == "" {
		return nil, errors.New("empty spec (want [hostIP:]hostPort:containerPort[/tcp|udp])")
	}
	addrPorts, proto, hasProto := strings.Cut(spec, "/")
	if hasProto {
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("unknown protocol %q (use tcp or udp)", proto)
		}
	} else {
		proto = "tcp"
	}

	hostIPText, hostPorts, containerPorts, err := splitParts(addrPorts)
	if err != nil {
		return nil, err
	}
	hostIP, err := parseHostIP(hostIPText)
	if err != nil {
		return nil, err
	}
	hostFirst, hostLast, err := parsePortRange("host", hostPorts)
	if err != nil {
		return nil, err
	}
	ctrFirst, ctrLast, err := parsePortRange("container", containerPorts)
	if err != nil {
		return nil, err
	}

	hostCount := int(hostLast) - int(hostFirst) + 1
	ctrCount := int(ctrLast) - int(ctrFirst) + 1
	if hostCount != ctrCount {
		return nil, fmt.Errorf("host range has %d ports, container range has %d", hostCount, ctrCount)
	}
	if hostCount > MaxRange {
		return nil, fmt.Errorf("range %q expands to %d mappings, more than the limit of %d", hostPorts, hostCount, MaxRange)
	}

	ms := make([]Mapping, hostCount)
	for i := range ms {
		ms[i] = Mapping{
			HostIP:        hostIP,
			HostPort:      hostFirst + uint16(i),
			ContainerPort: ctrFirst + uint16(i),
			Protocol:      proto,
		}
	}
	return ms, nil
}

// splitParts splits "[hostIP:]hostPort:containerPort" (the protocol already
// cut off). IPv6 host addresses are recognised only to say they are not
// supported: berth's bridge networks are IPv4 only.
func splitParts(s string) (hostIP, hostPorts, containerPorts string, err error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 1:
		return "", "", "", fmt.Errorf("missing host port (want [hostIP:]hostPort:containerPort; berth does not pick host ports)")
	case len(parts) == 2:
		return "", parts[0], parts[1], nil
	case len(parts) == 3:
		return parts[0], parts[1], parts[2], nil
	}
	// More than two colons: either an IPv6 address in front or garbage.
	last := len(parts) - 2
	ip := strings.Join(parts[:last], ":")
	if a, perr := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")); perr == nil && a.Is6() {
		return "", "", "", errors.New("IPv6 host addresses are not supported")
	}
	return "", "", "", fmt.Errorf("too many parts: %d (want [hostIP:]hostPort:containerPort)", len(parts))
}

// parseHostIP parses an IPv4 host address; "" and 0.0.0.0 mean every
// address and become the zero Addr.
func parseHostIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("host IP %q is not an IPv4 address", s)
	}
	if a.Is6() {
		return netip.Addr{}, errors.New("IPv6 host addresses are not supported")
	}
	if a.IsUnspecified() {
		return netip.Addr{}, nil
	}
	return a, nil
}

// parsePortRange parses "port" or "first-last"; side is "host" or
// "container" for messages.
func parsePortRange(side, s string) (first, last uint16, err error) {
	firstText, lastText, isRange := strings.Cut(s, "-")
	if !isRange {
		p, err := parsePort(side, s)
		return p, p, err
	}
	if firstText == "" || lastText == "" {
		return 0, 0, fmt.Errorf("%s port range %q is incomplete (want first-last)", side, s)
	}
	if first, err = parsePort(side, firstText); err != nil {
		return 0, 0, err
	}
	if last, err = parsePort(side, lastText); err != nil {
		return 0, 0, err
	}
	if last < first {
		return 0, 0, fmt.Errorf("%s port range %q is reversed (want first-last with first <= last)", side, s)
	}
	return first, last, nil
}

func parsePort(side, s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("%s port is missing", side)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s port %s out of range 1-65535", side, s)
	}
	if err != nil {
		return 0, fmt.Errorf("%s port %q is not a number", side, s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s port %d out of range 1-65535", side, n)
	}
	return uint16(n), nil
}
