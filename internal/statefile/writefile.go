package statefile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-runtime/berth/internal/crashpoint"
)

// WriteFile is for a single file that a reader needs whole, outside a
// Store: a plain os.WriteFile truncates first, so a SIGKILL between the
// truncate and the write leaves an empty file, and a reader that needs the
// file (berth's `delete -f` reading berth-hooks.json) then fails for good.
//
// WriteFile sets the content of path to data, with mode perm. crashPoint names
// the step between the complete temporary file and the rename, where the
// crash matrix kills berth (crashpoint.Hit); a crash there leaves the
// temporary file, named .NAME.tmp-*, beside path, in a directory whose
// owner removes it whole (a container's state directory).
//
// No fsync: the files live under /run, and must survive a killed process,
// not a power cut (see WriteTemp).
func WriteFile(path string, data []byte, perm os.FileMode, crashPoint string) error {
	dir, name := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		crashpoint.Hit(crashPoint)
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
