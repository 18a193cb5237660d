package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Store is a directory of claims that owners (container ids) hold, shared
// by every berth-net process under one flock: hooks/ipam's address leases
// and hooks/ports' host-port reservations are both Stores. Its layout:
//
//	lock            flock(2) target; never holds data
//	owners/<owner>  the owner's index: what it claims (the user's format)
//	tmp/            temporary files, renamed or linked into place when complete
//	...             the claim files, where the user puts them; content: the owner
//
// Crash safety rests on two rules, which every user keeps:
//
//   - A file name appears only with its full content: claims are linked
//     into place (Claim, which fails if the name exists) and other files
//     renamed (Write, WriteIndex). A crash cannot leave an empty or partial
//     file that looks valid, and OpenStore removes the temporary files a
//     crashed writer left in tmp/.
//   - An owner's index is written before its claims and removed after them
//     (RemoveIndex only once the claims are gone). So releasing an owner
//     always finds every claim it may hold; an index may name claims a
//     crash kept from being made, and those are simply not the owner's: a
//     claim belongs to whoever its file names (Claimant).
//
// Nothing calls fsync: see WriteTemp.
type Store struct {
	dir  string
	what string // names the store in errors: "ipam 10.77.0.0/16", "ports"
}

// OpenStore opens the store in dir, creating it and subdirs (mode 0700)
// if missing, and clears what a crashed writer left in tmp/.
func OpenStore(dir, what string, subdirs ...string) (*Store, error) {
	s := &Store{dir: dir, what: what}
	for _, d := range append([]string{dir, s.ownersDir(), s.tmpDir()}, subdirs...) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	unlock, err := s.Lock(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Every writer holds the exclusive lock while its temporary file
	// exists: whatever is there now was left by a writer that crashed.
	if err := ClearTempDir(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("%s: clean up after a crash: %w", what, err)
	}
	return s, nil
}

// Lock takes the store's flock: unix.LOCK_EX to change it, unix.LOCK_SH
// to read it.
func (s *Store) Lock(how int) (unlock func(), err error) {
	unlock, err = Lock(filepath.Join(s.dir, "lock"), how)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	return unlock, nil
}

// Path is a file or directory of the store.
func (s *Store) Path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// Owners lists the owners that have an index.
func (s *Store) Owners() ([]string, error) {
	entries, err := os.ReadDir(s.ownersDir())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.what, err)
	}
	owners := make([]string, 0, len(entries))
	for _, e := range entries {
		owners = append(owners, e.Name())
	}
	return owners, nil
}

// ReadIndex returns owner's index; indexed is false if it has none.
func (s *Store) ReadIndex(owner string) (content []byte, indexed bool, err error) {
	b, err := os.ReadFile(s.indexFile(owner))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: read the index of %s: %w", s.what, owner, err)
	}
	return b, true, nil
}

// WriteIndex sets owner's index, before any claim it names is made.
func (s *Store) WriteIndex(owner, content string) error {
	if err := Replace(s.tmpDir(), s.indexFile(owner), content); err != nil {
		return fmt.Errorf("%s: write the index of %s: %w", s.what, owner, err)
	}
	return nil
}

// RemoveIndex removes owner's index, once the claims it names are gone.
func (s *Store) RemoveIndex(owner string) error {
	if err := Remove(s.indexFile(owner)); err != nil {
		return fmt.Errorf("%s: remove the index of %s: %w", s.what, owner, err)
	}
	return nil
}

// Claim makes the claim file path name owner. It fails with an error
// matching fs.ErrExist if the claim is someone's already.
func (s *Store) Claim(path, owner string) error {
	return CreateExclusive(s.tmpDir(), path, owner)
}

// Claimant returns the owner that the claim file path names; ok is false
// if nobody holds the claim.
func (s *Store) Claimant(path string) (owner string, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", s.what, err)
	}
	return string(b), true, nil
}

// Write atomically sets a file of the store that is not a claim.
func (s *Store) Write(path, content string) error {
	return Replace(s.tmpDir(), path, content)
}

func (s *Store) ownersDir() string             { return filepath.Join(s.dir, "owners") }
func (s *Store) tmpDir() string                { return filepath.Join(s.dir, "tmp") }
func (s *Store) indexFile(owner string) string { return filepath.Join(s.ownersDir(), owner) }
