package main

import (
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor runs before the Go runtime starts when this
	// binary is re-executed as `berth init`: it joins or creates the
	// container's namespaces, which a multi-threaded Go program cannot do.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"

	"github.com/berth-runtime/berth/libruntime/aslimit"
	"github.com/berth-runtime/berth/libruntime/lifecycle"
)

// libcontainer starts each container process by re-executing this binary
// as `berth init`; that process becomes the container's init (or an exec'd
// process) and never returns to the CLI. `berth prestart-hook` is the shim
// each prestart hook runs through (lifecycle.WrapPrestart); it execs the
// hook and never returns either. Both are handled here, before the CLI, so
// that no flag parsing or logging set-up stands between them and their
// caller.
func init() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "init":
		aslimit.PauseBeforeExec()
		libcontainer.Init()
	case lifecycle.PrestartShimArg:
		err := lifecycle.RunPrestartShim(os.Args[2:])
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
		os.Exit(127)
	}
}
