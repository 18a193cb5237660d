package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// berthNet runs berth-net as a runtime runs its hooks: exec'd with the
// container's OCI state on stdin.
type berthNet struct {
	path, firewall, network string
	env                     []string
}

func newBerthNet(path, fw, dir string) (*berthNet, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	b := &berthNet{path: abs, firewall: fw, network: "nb" + strconv.Itoa(os.Getpid()%100000)}
	b.env = append(os.Environ(), "BERTH_NET_ROOT="+filepath.Join(dir, "net"))
	// A /16 leaves room for 500 containers and is private to this namespace.
	if _, _, _, err := timed(b.cmd(nil, "network", "create", "--subnet", "10.250.0.0/16", "--firewall", fw, b.network)); err != nil {
		return nil, fmt.Errorf("network create: %w", err)
	}
	return b, nil
}

func (b *berthNet) name() string { return "berth-net " + b.firewall }

func (b *berthNet) cmd(stdin []byte, args ...string) *exec.Cmd {
	c := exec.Command(b.path, args...)
	c.Env = b.env
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	return c
}

func state(s *standIn) []byte {
	data, _ := json.Marshal(specs.State{Version: specs.Version, ID: s.id, Status: specs.StateCreating, Pid: s.cmd.Process.Pid, Bundle: s.bundle})
	return data
}

func (b *berthNet) setup(s *standIn, hostPort int) (time.Duration, int64, error) {
	d, rss, _, err := timed(b.cmd(state(s), "setup", "--network", "bridge:"+b.network,
		"--publish", fmt.Sprintf("%d:80", hostPort), "--publish", fmt.Sprintf("%d:53/udp", hostPort)))
	return d, rss, err
}

func (b *berthNet) teardown(s *standIn) (time.Duration, error) {
	d, _, _, err := timed(b.cmd(state(s), "teardown"))
	return d, err
}

func (b *berthNet) close() {
	if _, _, _, err := timed(b.cmd(nil, "network", "rm", b.network)); err != nil {
		fmt.Fprintln(os.Stderr, "network rm:", err)
	}
}
