package network

import (
	"fmt"
	"strings"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/names"
)

// Mode is a parsed --network value.
type Mode struct {
	Kind string // bridge, host, none, container
	Name string // bridge: the network; container: the target container id
}

// ParseMode reads bridge, bridge:NAME, host, none or container:ID.
func ParseMode(s string) (Mode, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch {
	case kind == "bridge" && !hasArg:
		return Mode{Kind: "bridge", Name: DefaultNetwork}, nil
	case kind == "bridge":
		if err := names.NetworkName(arg); err != nil {
			return Mode{}, fmt.Errorf("--network: %w", err) // the error names the value
		}
		return Mode{Kind: "bridge", Name: arg}, nil
	case (kind == "host" || kind == "none") && !hasArg:
		return Mode{Kind: kind}, nil
	case kind == "container" && hasArg:
		if err := names.ContainerID(arg); err != nil {
			return Mode{}, fmt.Errorf("--network: %w", err)
		}
		return Mode{Kind: "container", Name: arg}, nil
	}
	return Mode{}, fmt.Errorf("--network %q: unknown mode (use bridge, bridge:NAME, host, none or container:ID)", s)
}

// SetupOptions are berth-net setup's arguments.
type SetupOptions struct {
	Mode     Mode
	Publish  []string
	Hostname string
}

// CheckSetupOptions checks setup's arguments as given on the command line,
// before any container exists: `berth spec` runs it so that a bad value is
// refused when the config is written, not when the container starts.
func CheckSetupOptions(mode string, publish []string, hostname string) error {
	m, err := ParseMode(mode)
	if err != nil {
		return err
	}
	_, err = SetupOptions{Mode: m, Publish: publish, Hostname: hostname}.check()
	return err
}

// check checks the options that do not depend on the container and returns
// the parsed port maps; Setup and CheckSetupOptions share it.
func (o SetupOptions) check() ([]portspec.Mapping, error) {
	maps, err := portspec.ParseAll(o.Publish)
	if err != nil {
		return nil, err
	}
	if len(maps) > 0 && o.Mode.Kind != "bridge" {
		return nil, fmt.Errorf("--publish: only bridge networks publish ports (this container's network is %s)", o.Mode.Kind)
	}
	if err := checkHostname(o.Hostname); err != nil {
		return nil, err
	}
	return maps, nil
}

// checkHostname accepts what /etc/hosts and sethostname(2) can hold: a DNS
// name of letters, digits, '-' and '.', at most 64 bytes (the kernel's
// limit). Anything else (a newline, a space) could forge lines of the
// container's /etc/hosts.
func checkHostname(h string) error {
	if h == "" {
		return nil
	}
	if len(h) > 64 {
		return fmt.Errorf("--hostname %.20q...: longer than 64 bytes", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("--hostname %q: character %q not allowed (use letters, digits, '-', '.')", h, c)
		}
	}
	if h[0] == '-' || h[0] == '.' {
		return fmt.Errorf("--hostname %q: must begin with a letter or a digit", h)
	}
	return nil
}
