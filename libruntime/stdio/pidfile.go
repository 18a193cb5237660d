// Package stdio connects a container's process to the world outside it:
// pipes or a pseudo-terminal for its standard streams, the console socket
// that hands a terminal to another program, signal forwarding and reaping
// for foreground runs, pid files and the systemd notify socket.
package stdio

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// WritePidFile writes pid to path atomically: readers (containerd, systemd)
// poll for the file and must never see it empty or half written, so it is
// written under a temporary name beside the target and renamed into place.
func WritePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_SYNC, 0o644)
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	_, err = f.WriteString(strconv.Itoa(pid))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}
