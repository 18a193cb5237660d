// Package state reports containers: the state directory layout, and the
// state/list JSON that runc prints and that containerd, podman and scripts
// parse. (Container ids are checked by internal/names.)
package state

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
)

// Container is one container as `state` and `list -f json` print it: the
// runtime-spec state plus runc's `created` and `owner`. Field order and
// names match runc's, because clients unmarshal this exact shape.
type Container struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

// Describe reads a loaded container's state. A stopped container reports
// pid 0: its old pid may already belong to another process.
func Describe(c *libcontainer.Container) (*Container, error) {
	status, err := c.Status()
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", c.ID(), err)
	}
	st, err := c.State()
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", c.ID(), err)
	}
	pid := st.InitProcessPid
	if status == libcontainer.Stopped {
		pid = 0
	}
	bundle, annotations := utils.Annotations(st.Config.Labels)
	return &Container{
		OCIVersion:  st.Config.Version,
		ID:          st.ID,
		Pid:         pid,
		Status:      status.String(),
		Bundle:      bundle,
		Rootfs:      st.Config.Rootfs,
		Created:     st.Created,
		Annotations: annotations,
	}, nil
}

// List describes every container under root, with its owner as `list`
// shows it. Containers that vanish or cannot be read while listing are
// reported through warn and skipped, as runc does, so that one broken state
// directory does not hide all the others. A root that does not exist is an
// error (wrapping fs.ErrNotExist): whether that means "no containers yet"
// is the caller's to say.
func List(root string, warn func(id string, err error)) ([]Container, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	var out []Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed while we were listing
		}
		// Only directories with a state file are containers: the root
		// also holds berth-net's state (/run/berth/net) and lock files.
		if _, err := os.Stat(filepath.Join(root, e.Name(), "state.json")); errors.Is(err, os.ErrNotExist) {
			continue
		}
		c, err := libcontainer.Load(root, e.Name())
		if err != nil {
			warn(e.Name(), err)
			continue
		}
		d, err := Describe(c)
		if err != nil {
			warn(e.Name(), err)
			continue
		}
		d.Owner = ownerOf(info)
		out = append(out, *d)
	}
	return out, nil
}

func ownerOf(info os.FileInfo) string {
	uid := info.Sys().(*syscall.Stat_t).Uid
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(int(uid))
}

// Dir is the state directory of container id under root.
func Dir(root, id string) string {
	return filepath.Join(root, id)
}
