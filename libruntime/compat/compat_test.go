package compat

import (
	"strings"
	"testing"

	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

func TestApplyDropsBindMountDataOnly(t *testing.T) {
	cfg := &configs.Config{Mounts: []*configs.Mount{
		{Destination: "/bind", Device: "bind", Flags: unix.MS_BIND | unix.MS_REC, Data: "mode=755,size=1k"},
		{Destination: "/tmp", Device: "tmpfs", Data: "mode=755,size=1k"},
		{Destination: "/plain", Device: "bind", Flags: unix.MS_BIND},
	}}
	warnings := Apply(cfg)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "/bind") || !strings.Contains(warnings[0], "mode=755,size=1k") {
		t.Errorf("expected one warning naming /bind and its options, got %q", warnings)
	}
	if cfg.Mounts[0].Data != "" {
		t.Errorf("bind mount: expected no data left, got %q", cfg.Mounts[0].Data)
	}
	if cfg.Mounts[1].Data != "mode=755,size=1k" {
		t.Errorf("tmpfs mount: expected its data kept, got %q", cfg.Mounts[1].Data)
	}
}

func TestApplyClearsFifoNumbersOnly(t *testing.T) {
	fifo := &devices.Device{Rule: devices.Rule{Type: devices.FifoDevice, Major: 8, Minor: 666}, Path: "/dev/fifo"}
	char := &devices.Device{Rule: devices.Rule{Type: devices.CharDevice, Major: 1, Minor: 3}, Path: "/dev/null"}
	if w := Apply(&configs.Config{Devices: []*devices.Device{fifo, char}}); len(w) != 0 {
		t.Errorf("expected no warnings for device numbers, got %q", w)
	}
	if fifo.Major != 0 || fifo.Minor != 0 {
		t.Errorf("FIFO: expected 0:0, got %d:%d", fifo.Major, fifo.Minor)
	}
	if char.Major != 1 || char.Minor != 3 {
		t.Errorf("char device: expected 1:3 kept, got %d:%d", char.Major, char.Minor)
	}
}
