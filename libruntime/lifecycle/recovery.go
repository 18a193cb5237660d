package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/internal/statefile"
)

// recoveryFile holds what `delete -f` needs to clean up after a create
// that died before libcontainer wrote state.json. libcontainer creates the
// cgroup and starts the init, then runs the createRuntime and prestart
// hooks, and only then writes its state: a crash (or SIGKILL) of berth in
// between leaves a cgroup with a waiting init in it and a state directory
// that libcontainer.Load cannot read.
const recoveryFile = "berth-recovery.json"

// Recovery is written before the container's cgroup exists.
type Recovery struct {
	Cgroup *cgroups.Cgroup `json:"cgroup"`
	State  specs.State     `json:"state"` // id, bundle and annotations, for the poststop hooks
}

// SaveRecovery records cfg's cgroup and the container's identity in its
// state directory.
func SaveRecovery(stateDir, id, bundle string, annotations map[string]string, cfg *configs.Config) error {
	r := Recovery{Cgroup: cfg.Cgroups, State: specs.State{
		Version: specs.Version, ID: id, Status: specs.StateStopped, Bundle: bundle, Annotations: annotations,
	}}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("save recovery record of %s: %w", id, err)
	}
	if err := statefile.WriteFile(filepath.Join(stateDir, recoveryFile), data, 0o600, "create.recovery.temp"); err != nil {
		return fmt.Errorf("save recovery record of %s: %w", id, err)
	}
	return nil
}

// Recover cleans up what a create that died early left in stateDir: it
// kills every process of the container's cgroup, removes the cgroup and
// runs the poststop hooks (so that, say, the network hook releases what
// its setup took). Without a recovery record there is nothing to do.
func Recover(stateDir string, hooks Deferred) error {
	data, err := os.ReadFile(filepath.Join(stateDir, recoveryFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover %s: %w", stateDir, err)
	}
	var r Recovery
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("recover %s: %s: %w", stateDir, recoveryFile, err)
	}
	if r.Cgroup != nil {
		m, err := manager.New(r.Cgroup)
		if err != nil {
			return fmt.Errorf("recover %s: cgroup: %w", r.State.ID, err)
		}
		if err := killCgroup(m); err != nil {
			return fmt.Errorf("recover %s: %w", r.State.ID, err)
		}
		if err := m.Destroy(); err != nil {
			return fmt.Errorf("recover %s: remove cgroup: %w", r.State.ID, err)
		}
	}
	for _, err := range runEach(configs.Poststop, hooks.Poststop, &r.State) {
		logrus.Warnf("container %s: %v", r.State.ID, err)
	}
	return nil
}

// killCgroup SIGKILLs the cgroup's processes until none is left. The
// cgroup is frozen while the list is read and signalled, so that nothing
// in it can fork a process the list misses.
func killCgroup(m cgroups.Manager) error {
	if !m.Exists() {
		return nil
	}
	for attempt := 0; attempt < 100; attempt++ {
		_ = m.Freeze(cgroups.Frozen)
		pids, err := m.GetAllPids()
		if err != nil {
			_ = m.Freeze(cgroups.Thawed)
			return fmt.Errorf("list cgroup processes: %w", err)
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		_ = m.Freeze(cgroups.Thawed)
		if len(pids) == 0 {
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
	return errors.New("cgroup still has processes after SIGKILL")
}
