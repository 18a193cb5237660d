package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/internal/netcontract"
)

// Networking lives in the berth-net binary, installed beside berth: berth
// stays small and free of netlink and firewall code, because libcontainer
// re-executes berth for every container's init and pays for its size on
// every create. `berth network ...` and `berth gc` hand over to berth-net
// as `git foo` runs `git-foo`.

func berthNetPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find berth-net: %w", err)
	}
	p := filepath.Join(filepath.Dir(self), netcontract.Binary)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("berth-net not found beside berth (%s): %w", p, err)
	}
	return p, nil
}

// handOver replaces berth with berth-net, passing the arguments through.
func handOver(args ...string) error {
	p, err := berthNetPath()
	if err != nil {
		return err
	}
	return syscall.Exec(p, append([]string{netcontract.Binary}, args...), os.Environ())
}

var networkCommand = &cli.Command{
	Name:            "network",
	Usage:           "manage bridge networks (create, ls, inspect, rm, prune, check, reload); see berth-net network --help",
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		return handOver(append([]string{"network"}, c.Args().Slice()...)...)
	},
}

var gcCommand = &cli.Command{
	Name:  "gc",
	Usage: "release network leases, ports, veths, rules and records of containers that no longer run",
	Action: func(c *cli.Context) error {
		return handOver("gc")
	},
}

// networkHookPATH is the PATH hooks get: berth-net runs iptables.
const networkHookPATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// addNetworkHooks makes spec's container networked by berth-net: set up
// as a createRuntime hook (after the namespaces exist, before the
// container's process runs) and torn down as a poststop hook.
func addNetworkHooks(spec *specs.Spec, mode string, publish []string, hostname string) error {
	netBin, err := berthNetPath()
	if err != nil {
		return err
	}
	// berth-net checks the values now, so that a bad one fails here and
	// not at the container's start.
	check := []string{"check", "--network", mode, "--hostname", hostname}
	for _, p := range publish {
		check = append(check, "--publish", p)
	}
	if out, err := exec.Command(netBin, check...).CombinedOutput(); err != nil {
		return errors.New(netcontract.Message(out))
	}
	kind, target, _ := strings.Cut(mode, ":")
	switch kind {
	case "host":
		removeNamespace(spec, specs.NetworkNamespace)
	case "container":
		out, err := exec.Command(netBin, "namespace-path", target).CombinedOutput()
		if err != nil {
			return fmt.Errorf("--network %s: %s", mode, netcontract.Message(out))
		}
		setNamespacePath(spec, specs.NetworkNamespace, strings.TrimSpace(string(out)))
	}
	if hostname != "" {
		spec.Hostname = hostname
	}
	// Without an explicit env a hook inherits the environment berth runs
	// in (libcontainer leaves exec.Cmd.Env nil), BERTH_NET_ROOT included.
	// When a root is given at spec time, the hooks are pinned to it, with
	// every other BERTH_NET_* setting of that moment, so the container
	// keeps the world it was specified in.
	env, err := pinnedHookEnv()
	if err != nil {
		return err
	}
	args := []string{netcontract.Binary, "setup", "--network", mode}
	for _, p := range publish {
		args = append(args, "--publish", p)
	}
	if hostname != "" {
		args = append(args, "--hostname", hostname)
	}
	if spec.Hooks == nil {
		spec.Hooks = &specs.Hooks{}
	}
	spec.Hooks.CreateRuntime = append(spec.Hooks.CreateRuntime, specs.Hook{Path: netBin, Args: args, Env: env})
	spec.Hooks.Poststop = append(spec.Hooks.Poststop, specs.Hook{Path: netBin, Args: []string{netcontract.Binary, "teardown"}, Env: env})
	return nil
}

func removeNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) {
	if spec.Linux == nil {
		return
	}
	var kept []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type != t {
			kept = append(kept, ns)
		}
	}
	spec.Linux.Namespaces = kept
}

func setNamespacePath(spec *specs.Spec, t specs.LinuxNamespaceType, path string) {
	removeNamespace(spec, t)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

// pinnedHookEnv returns the environment for berth-net's hooks: nil (inherit
// the runtime's) unless BERTH_NET_ROOT is set, and then PATH and all the
// BERTH_NET_* variables, with the root made absolute.
func pinnedHookEnv() ([]string, error) {
	root := os.Getenv(netcontract.RootEnv)
	if root == "" {
		return nil, nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", netcontract.RootEnv, err)
	}
	env := []string{networkHookPATH, netcontract.RootEnv + "=" + abs}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, netcontract.EnvPrefix) && !strings.HasPrefix(kv, netcontract.RootEnv+"=") {
			env = append(env, kv)
		}
	}
	return env, nil
}
