package portspec

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var localhost = netip.MustParseAddr("127.0.0.1")

func TestParseGood(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []Mapping
	}{
		{"8080:80", []Mapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"8080:80/tcp", []Mapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"53:53/udp", []Mapping{{HostPort: 53, ContainerPort: 53, Protocol: "udp"}}},
		{"53:53/UDP", []Mapping{{HostPort: 53, ContainerPort: 53, Protocol: "udp"}}},
		{"53:53/Tcp", []Mapping{{HostPort: 53, ContainerPort: 53, Protocol: "tcp"}}},
		{"1:65535", []Mapping{{HostPort: 1, ContainerPort: 65535, Protocol: "tcp"}}},
		{"127.0.0.1:8080:80", []Mapping{{HostIP: localhost, HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"127.0.0.1:8080:80/udp", []Mapping{{HostIP: localhost, HostPort: 8080, ContainerPort: 80, Protocol: "udp"}}},
		// The wildcard has one spelling: the zero Addr.
		{"0.0.0.0:8080:80", []Mapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{":8080:80", []Mapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"8080-8080:80-80", []Mapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}},
		{"0080:080", []Mapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}}},
		{"127.0.0.1:8000-8002:9000-9002/udp", []Mapping{
			{HostIP: localhost, HostPort: 8000, ContainerPort: 9000, Protocol: "udp"},
			{HostIP: localhost, HostPort: 8001, ContainerPort: 9001, Protocol: "udp"},
			{HostIP: localhost, HostPort: 8002, ContainerPort: 9002, Protocol: "udp"},
		}},
		{"65534-65535:1-2", []Mapping{
			{HostPort: 65534, ContainerPort: 1, Protocol: "tcp"},
			{HostPort: 65535, ContainerPort: 2, Protocol: "tcp"},
		}},
	} {
		got, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}

func TestParseRangeCap(t *testing.T) {
	ms, err := Parse("10000-11023:20000-21023")
	if err != nil {
		t.Fatalf("a range of exactly %d ports: %v", MaxRange, err)
	}
	if len(ms) != MaxRange || ms[MaxRange-1].HostPort != 11023 || ms[MaxRange-1].ContainerPort != 21023 {
		t.Fatalf("got %d mappings ending in %v", len(ms), ms[len(ms)-1])
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		mention []string // besides the spec itself
	}{
		{"", []string{"empty"}},
		{"8080:80/sctp", []string{`unknown protocol "sctp" (use tcp or udp)`}},
		{"8080:80/", []string{`unknown protocol ""`}},
		{"8080:80/tcp/udp", []string{`unknown protocol "tcp/udp"`}},
		{"70000:80", []string{"host port 70000 out of range 1-65535"}},
		{"8080:70000", []string{"container port 70000 out of range 1-65535"}},
		{"99999999999999999999999:80", []string{"host port 99999999999999999999999 out of range"}},
		{"0:80", []string{"host port 0 out of range"}},
		{"8080:0", []string{"container port 0 out of range"}},
		{"8080-8081:80-82", []string{"host range has 2 ports, container range has 3"}},
		{"8080-8090:80", []string{"host range has 11 ports, container range has 1"}},
		{"x:80", []string{`host port "x" is not a number`}},
		{"80:y", []string{`container port "y" is not a number`}},
		{"+80:80", []string{`host port "+80" is not a number`}},
		{" 80:80", []string{`host port " 80" is not a number`}},
		{"::1:80:80", []string{"IPv6 host addresses are not supported"}},
		{"[::1]:80:80", []string{"IPv6 host addresses are not supported"}},
		{"[fe80::1%eth0]:80:80", []string{"IPv6 host addresses are not supported"}},
		{"90-80:90-80", []string{`host port range "90-80" is reversed`}},
		{"80-90:90-80", []string{`container port range "90-80" is reversed`}},
		{"-80:80", []string{`host port range "-80" is incomplete`}},
		{"80-:80", []string{`host port range "80-" is incomplete`}},
		{"80-81-82:80", []string{`host port "81-82" is not a number`}},
		{"80", []string{"missing host port"}},
		{":80", []string{"host port is missing"}},
		{"1.2.3.4::80", []string{"host port is missing"}},
		{"1.2.3.4:80:", []string{"container port is missing"}},
		{"a:b:c:d", []string{"too many parts: 4"}},
		{"1.2.3.4:1:2:3", []string{"too many parts: 4"}},
		{"localhost:80:80", []string{`host IP "localhost" is not an IPv4 address`}},
		{"1.2.3:80:80", []string{`host IP "1.2.3" is not an IPv4 address`}},
		{"01.2.3.4:80:80", []string{`host IP "01.2.3.4" is not an IPv4 address`}},
		{"[1.2.3.4]:80:80", []string{`host IP "[1.2.3.4]" is not an IPv4 address`}},
		{"1-1025:1-1025", []string{`range "1-1025" expands to 1025 mappings, more than the limit of 1024`}},
		{"1-65535:1-65535", []string{"expands to 65535 mappings"}},
	} {
		ms, err := Parse(tc.spec)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", tc.spec, ms)
			continue
		}
		for _, want := range append([]string{fmt.Sprintf("publish %q: ", tc.spec)}, tc.mention...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Parse(%q) error %q does not mention %q", tc.spec, err, want)
			}
		}
	}
}

func TestMappingString(t *testing.T) {
	for m, want := range map[Mapping]string{
		{HostIP: localhost, HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}: "127.0.0.1:8080->80/tcp",
		{HostPort: 8080, ContainerPort: 80, Protocol: "udp"}:                    "8080->80/udp",
	} {
		if got := m.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", m, got, want)
		}
	}
}

func TestParseAll(t *testing.T) {
	ms, err := ParseAll([]string{
		"8080:80",
		"8080:80/udp",           // other protocol
		"127.0.0.1:9090:90",     // two specific addresses
		"127.0.0.2:9090:90",     // on one port
		"10000-10001:1000-1001", // range
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("got %d mappings, want 6: %v", len(ms), ms)
	}
	if ms, err := ParseAll(nil); err != nil || len(ms) != 0 {
		t.Fatalf("ParseAll(nil) = %v, %v", ms, err)
	}

	for _, tc := range []struct {
		specs   []string
		mention string
	}{
		{[]string{"8080:80", "8080:81"}, `publish "8080:81": host port 8080/tcp is already published by "8080:80"`},
		{[]string{"8080:80", "8080:80"}, `publish "8080:80": host port 8080/tcp is already published by "8080:80"`},
		{[]string{"8080:80", "127.0.0.1:8080:81"}, `publish "127.0.0.1:8080:81": host port 127.0.0.1:8080/tcp is already published by "8080:80"`},
		{[]string{"127.0.0.1:8080:81", "0.0.0.0:8080:80"}, `publish "0.0.0.0:8080:80": host port 8080/tcp is already published by "127.0.0.1:8080:81"`},
		{[]string{"8000-8010:8000-8010/udp", "8010:1/UDP"}, `publish "8010:1/UDP": host port 8010/udp is already published by "8000-8010:8000-8010/udp"`},
		{[]string{"8080:80", "bad"}, `publish "bad": missing host port`},
	} {
		_, err := ParseAll(tc.specs)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseAll(%q) = %v, want an error mentioning %q", tc.specs, err, tc.mention)
		}
	}
}

// FuzzParse checks, for any input, that Parse does not panic and that what
// it accepts is well-formed:
//
//   - 1..MaxRange mappings, sharing one host IP (zero, or an IPv4 address
//     other than 0.0.0.0) and one protocol (tcp or udp), ports 1..65535,
//     host and container ports both rising by one from mapping to mapping;
//   - every mapping m survives a round trip through its String() form:
//     replacing the "->" in m.String() by ":" gives a spec that Parse
//     turns into exactly []Mapping{m};
//   - ParseAll of the spec alone gives the same mappings (a spec cannot
//     clash with itself).
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, spec string) {
		ms, err := Parse(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("publish %q: ", spec)) {
				t.Fatalf("error %q does not name the spec", err)
			}
			return
		}
		if len(ms) < 1 || len(ms) > MaxRange {
			t.Fatalf("Parse(%q) gave %d mappings", spec, len(ms))
		}
		first := ms[0]
		if first.Protocol != "tcp" && first.Protocol != "udp" {
			t.Fatalf("Parse(%q): protocol %q", spec, first.Protocol)
		}
		if first.HostIP.IsValid() && (!first.HostIP.Is4() || first.HostIP.IsUnspecified()) {
			t.Fatalf("Parse(%q): host IP %v", spec, first.HostIP)
		}
		for i, m := range ms {
			if m.HostIP != first.HostIP || m.Protocol != first.Protocol {
				t.Fatalf("Parse(%q): mapping %d %v differs in host IP or protocol from %v", spec, i, m, first)
			}
			if m.HostPort == 0 || m.ContainerPort == 0 {
				t.Fatalf("Parse(%q): mapping %d %v has port 0", spec, i, m)
			}
			if int(m.HostPort) != int(first.HostPort)+i || int(m.ContainerPort) != int(first.ContainerPort)+i {
				t.Fatalf("Parse(%q): mapping %d %v does not follow %v in order", spec, i, m, first)
			}
			again := strings.Replace(m.String(), "->", ":", 1)
			back, err := Parse(again)
			if err != nil {
				t.Fatalf("Parse(%q) gave %v, whose String() does not parse back: %v", spec, m, err)
			}
			if len(back) != 1 || back[0] != m {
				t.Fatalf("Parse(%q) gave %v; Parse(%q) = %v", spec, m, again, back)
			}
		}
		all, err := ParseAll([]string{spec})
		if err != nil || !reflect.DeepEqual(all, ms) {
			t.Fatalf("ParseAll([%q]) = %v, %v; Parse gave %v", spec, all, err, ms)
		}
	})
}
