package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-runtime/berth/hooks/portspec"
	"github.com/berth-runtime/berth/internal/names"
	"github.com/berth-runtime/berth/internal/statefile"
)

// Record is everything berth-net made for one container. It is written
// before the things it names are made, so that teardown, which undoes
// exactly what a record names and ignores what is already gone, also
// cleans up after a setup that crashed halfway.
type Record struct {
	ID       string             `json:"id"`
	Mode     string             `json:"mode"` // bridge, host, none or container
	Pid      int                `json:"pid,omitempty"`
	PidStart uint64             `json:"pidStart,omitempty"` // tells a reused pid apart
	Bundle   string             `json:"bundle,omitempty"`
	Hostname string             `json:"hostname,omitempty"`
	Network  string             `json:"network,omitempty"`
	Bridge   string             `json:"bridge,omitempty"`
	Firewall string             `json:"firewall,omitempty"`
	HostVeth string             `json:"hostVeth,omitempty"` // our end of the veth pair
	Addr     netip.Addr         `json:"addr,omitzero"`
	Ports    []portspec.Mapping `json:"ports,omitempty"`
	Target   string             `json:"target,omitempty"` // container mode: whose namespace
}

// hostVethName derives the host end's name from the container id, so that
// a crashed setup's link can be found from the id alone. (The container's
// end is eth0 in the container's namespace from the start.)
func hostVethName(id string) string { return "bt" + shortHash(id, 11) }

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// recordName is the file name of a container's record: ID.json, or, for an
// id too long for that (an id may have 255 bytes, as many as a file name),
// ~HASH.json: '~' begins no container id, so the two kinds never meet, and
// the record inside says whose it is.
func recordName(id string) string {
	if len(id)+len(".json") <= maxFileName {
		return id + ".json"
	}
	return longRecordPrefix + shortHash(id, 64) + ".json"
}

const (
	maxFileName      = 255 // NAME_MAX
	longRecordPrefix = "~"
)

func (l Layout) saveRecord(r *Record) error {
	return saveJSON(l.recordFile(r.ID), "record of "+r.ID, r)
}

// LoadRecord reads a container's record; os.ErrNotExist if it has none.
func (l Layout) LoadRecord(id string) (*Record, error) {
	if err := names.ContainerID(id); err != nil {
		return nil, err
	}
	var r Record
	if err := loadJSON(l.recordFile(id), "record of "+id, &r); err != nil {
		return nil, err
	}
	// Valid JSON is not yet a record: `null`, `{}` or another container's
	// record would pass for one that names nothing, and gc would take what
	// the container holds for nobody's.
	if r.ID != id {
		return nil, fmt.Errorf("record of %s: corrupt %s: it is for container %q", id, l.recordFile(id), r.ID)
	}
	switch r.Mode {
	case "bridge", "host", "none", "container":
	default:
		return nil, fmt.Errorf("record of %s: corrupt %s: unknown mode %q", id, l.recordFile(id), r.Mode)
	}
	return &r, nil
}

// Records lists every container record, sorted by id.
func (l Layout) Records() ([]Record, error) {
	entries, err := os.ReadDir(l.recordsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	var out []Record
	for _, e := range entries {
		// Only ID.json names a record: the atomic writes' temporary files
		// (new-*) have no suffix. A container id may begin with '.' (runc
		// allows it), so such a record must not be taken for a hidden file:
		// gc and network rm would not see the container.
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if strings.HasPrefix(id, longRecordPrefix) {
			var err error
			if id, err = l.longRecordID(e.Name()); errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
		}
		if names.ContainerID(id) != nil {
			continue
		}
		r, err := l.LoadRecord(id)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// longRecordID reads whose record the file name (a ~HASH.json) is: the id
// inside. A file whose id would not have this name is an error, as any
// unreadable record is: gc must not take its container for gone.
func (l Layout) longRecordID(name string) (string, error) {
	var r Record
	if err := loadJSON(filepath.Join(l.recordsDir(), name), "record "+name, &r); err != nil {
		return "", err
	}
	if recordName(r.ID) != name {
		return "", fmt.Errorf("record %s: names container %q, whose record is %s", name, r.ID, recordName(r.ID))
	}
	return r.ID, nil
}

func (l Layout) removeRecord(id string) error {
	if err := statefile.Remove(l.recordFile(id)); err != nil {
		return fmt.Errorf("remove record of %s: %w", id, err)
	}
	return nil
}
