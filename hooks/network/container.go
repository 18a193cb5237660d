package network

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/vishvananda/netns"

	"github.com/berth-runtime/berth/internal/process"
)

// joinContainer is --network container:ID: the container was created in
// ID's network namespace (berth spec put its path in config.json); check
// that it really is, and share ID's name resolution.
func (l Layout) joinContainer(rec *Record, ns netns.NsHandle, target, rootfs string) error {
	t, err := l.runningTarget(target)
	if err != nil {
		return err
	}
	tns, err := netns.GetFromPid(t.Pid)
	if err != nil {
		return fmt.Errorf("--network container:%s: %w", target, err)
	}
	defer tns.Close()
	if !tns.Equal(ns) {
		return fmt.Errorf("--network container:%s: this container is not in %s's network namespace (config.json's linux.namespaces network path must be /proc/%d/ns/net)", target, target, t.Pid)
	}
	rec.Target = target
	if err := l.saveRecord(rec); err != nil {
		return err
	}
	return etcFiles{hostname: rec.Hostname, hosts: hostsFile(rec.Hostname, t.Addr), resolv: hostResolvConf()}.write(rootfs)
}

// NamespacePath is where `berth spec --network container:ID` points the
// new container's network namespace: the running target's own.
func (l Layout) NamespacePath(target string) (string, error) {
	t, err := l.runningTarget(target)
	if err != nil {
		return "", err
	}
	return "/proc/" + strconv.Itoa(t.Pid) + "/ns/net", nil
}

// runningTarget is the record of the container that --network
// container:TARGET joins, if it is running and has a namespace to share.
func (l Layout) runningTarget(target string) (*Record, error) {
	t, err := l.LoadRecord(target)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--network container:%s: no such container with a berth network", target)
	}
	if err != nil {
		return nil, err
	}
	if t.Mode == "host" {
		return nil, fmt.Errorf("--network container:%s: that container uses the host's network (use --network host)", target)
	}
	if !t.running() {
		return nil, fmt.Errorf("--network container:%s: container is not running", target)
	}
	return t, nil
}

// running reports whether the container's init still runs: same pid, same
// start time.
func (r *Record) running() bool {
	start, ok := process.StartTime(r.Pid)
	return ok && r.PidStart != 0 && start == r.PidStart
}
