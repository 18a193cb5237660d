// Package state names containers and reports them: container id rules, the
// state directory layout, and the state/list JSON that runc prints and that
// containerd, podman and scripts parse.
package state

import (
	"fmt"
	"strings"
)

// MaxIDLength is the longest container id: an id names the container's
// state directory (and, by default, its cgroups), and a file name has at
// most 255 bytes (NAME_MAX). A longer id would pass every other check and
// then fail with "file name too long".
const MaxIDLength = 255

// ValidateID checks a container id before it is used to build any path.
// libcontainer checks ids too, but its error ("invalid id format") does not
// say what is wrong; users deserve to know which character to remove.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("container id: must not be empty")
	case len(id) > MaxIDLength:
		return fmt.Errorf("container id: longer than %d bytes", MaxIDLength)
	case id == "." || id == "..":
		return fmt.Errorf("container id %q: must not be a path element", id)
	case strings.ContainsRune(id, '/'):
		return fmt.Errorf("container id %q: must not contain '/'", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '+' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("container id %q: character %q not allowed (use letters, digits, '_', '+', '-', '.')", id, c)
		}
	}
	return nil
}
