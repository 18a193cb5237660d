package main

import (
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor runs before the Go runtime starts when this
	// binary is re-executed as `berth init`: it joins or creates the
	// container's namespaces, which a multi-threaded Go program cannot do.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// libcontainer starts each container process by re-executing this binary
// as `berth init`; that process becomes the container's init (or an exec'd
// process) and never returns to the CLI.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
}
