package main

import (
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/urfave/cli/v2"

	"github.com/berth-runtime/berth/libruntime/aslimit"
	"github.com/berth-runtime/berth/libruntime/lifecycle"
	"github.com/berth-runtime/berth/libruntime/state"
	"github.com/berth-runtime/berth/libruntime/stdio"
)

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "run the user's process in a created container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		ct, err := loadContainer(c)
		if err != nil {
			return err
		}
		status, err := ct.Status()
		if err != nil {
			return err
		}
		switch status {
		case libcontainer.Created:
		case libcontainer.Stopped:
			return fmt.Errorf("cannot start container %s: it has stopped", ct.ID())
		case libcontainer.Running:
			return fmt.Errorf("cannot start container %s: it is already running", ct.ID())
		default:
			return fmt.Errorf("cannot start container %s in the %s state", ct.ID(), status)
		}
		return start(ct, c.String("root"))
	},
}

func start(ct *libcontainer.Container, root string) error {
	stateDir := state.Dir(root, ct.ID())
	hooks, err := lifecycle.LoadDeferred(stateDir)
	if err != nil {
		return err
	}
	notify := stdio.NewNotifySocket(os.Getenv("NOTIFY_SOCKET"), stateDir)
	if notify != nil {
		if err := notify.Bind(); err != nil {
			return err
		}
		defer notify.Close()
	}
	st, err := ct.State()
	if err != nil {
		return err
	}
	// The init waits on the exec fifo, past its own work (or is about to:
	// a start right after create may come before it gets there): the
	// RLIMIT_AS that create held back binds the program from its first
	// instruction.
	if hooks.AddressSpace != nil {
		aslimit.WaitForExecFifo(st.InitProcessPid, 10*time.Second)
	}
	if err := aslimit.Apply(st.InitProcessPid, hooks.AddressSpace); err != nil {
		if derr := killAndDestroy(ct, hooks); derr != nil {
			err = fmt.Errorf("%w; destroy: %v", err, derr)
		}
		return fmt.Errorf("start %s: %w", ct.ID(), err)
	}
	if err := ct.Exec(); err != nil {
		return fmt.Errorf("start %s: %w", ct.ID(), err)
	}
	if err := afterStart(ct, st.InitProcessPid, hooks); err != nil {
		// The spec's lifecycle goes on at "destroy" (step 12), which runs
		// the poststop hooks.
		if derr := killAndDestroy(ct, hooks); derr != nil {
			err = fmt.Errorf("%w; destroy: %v", err, derr)
		}
		return fmt.Errorf("start %s: %w", ct.ID(), err)
	}
	if notify != nil {
		return notify.Relay(st.InitProcessPid, st.InitProcessPid)
	}
	return nil
}
