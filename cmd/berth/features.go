package main

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"
)

// Annotation keys in the features document, in runc's style.
const (
	annotationVersion      = "io.github.berth-runtime.berth.version"
	annotationCommit       = "io.github.berth-runtime.berth.commit"
	annotationSeccomp      = "io.github.seccomp.libseccomp.version"
	annotationLibcontainer = "org.opencontainers.runc.libcontainer.version"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "print the features this runtime supports, as runtime-spec features JSON",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		yes := true
		feat := features.Features{
			OCIVersionMin: "1.0.0",
			OCIVersionMax: specs.Version,
			Annotations: map[string]string{
				annotationVersion:      c.App.Version,
				annotationCommit:       gitCommit,
				annotationLibcontainer: libcontainerVersion,
			},
			Hooks:        configs.KnownHookNames(),
			MountOptions: specconv.KnownMountOptions(),
			Linux: &features.Linux{
				Namespaces:   specconv.KnownNamespaces(),
				Capabilities: capabilities.KnownCapabilities(),
				Cgroup: &features.Cgroup{
					V1: &yes, V2: &yes, Systemd: &yes, SystemdUser: &yes, Rdma: &yes,
				},
				Apparmor: &features.Apparmor{Enabled: &yes},
				Selinux:  &features.Selinux{Enabled: &yes},
				IntelRdt: &features.IntelRdt{Enabled: &yes, Schemata: &yes, Monitoring: &yes},
				MemoryPolicy: &features.MemoryPolicy{
					Modes: specconv.KnownMemoryPolicyModes(),
					Flags: specconv.KnownMemoryPolicyFlags(),
				},
				MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &yes}},
				NetDevices:      &features.NetDevices{Enabled: &yes},
			},
			PotentiallyUnsafeConfigAnnotations: []string{"bundle", "org.systemd.property.", "org.criu.config"},
		}
		if seccomp.Enabled {
			feat.Linux.Seccomp = &features.Seccomp{
				Enabled:        &yes,
				Actions:        seccomp.KnownActions(),
				Operators:      seccomp.KnownOperators(),
				Archs:          seccomp.KnownArchs(),
				KnownFlags:     seccomp.KnownFlags(),
				SupportedFlags: seccomp.SupportedFlags(),
			}
			major, minor, patch := seccomp.Version()
			feat.Annotations[annotationSeccomp] = fmt.Sprintf("%d.%d.%d", major, minor, patch)
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "    ")
		return enc.Encode(feat)
	},
}
