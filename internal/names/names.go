// Package names holds the rules for the names berth and berth-net take from
// users and build paths, cgroups, interfaces and firewall rules from:
// container ids, network names and interface names. One rule per kind, so
// that an id berth accepts is never refused later by berth-net (or the
// other way round), and every path built from a name stays one entry of
// the directory it is built in.
//
// Errors name the kind and the value ("container id \"a b\": ..."); callers
// add only where the value came from (a flag, --network).
package names

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxContainerID is the longest container id. runc's rule has no length
// limit of its own, but an id names the container's state directory, and a
// file name has at most 255 bytes (NAME_MAX): a longer id would pass every
// other check and then fail with "file name too long".
const MaxContainerID = 255

// ContainerID checks a container id as runc's libcontainer does
// (validateID: one or more of letters, digits, '_', '+', '-', '.', and not
// a path element of its own, "." or ".."), within MaxContainerID bytes.
// libcontainer checks ids too, but its error ("invalid id format") does not
// say what is wrong; this one names the character to remove.
func ContainerID(id string) error {
	return check("container id", id, MaxContainerID, "_+-.", false)
}

// MaxNetworkName bounds network names: they become file names, nft chain
// names and iptables comments, which must stay short.
const MaxNetworkName = 64

// NetworkName checks a network name as Docker's engine does (moby's
// RestrictedNameChars: a letter or a digit, then letters, digits, '_', '.',
// '-'), within MaxNetworkName bytes. The first character matters: a
// leading '.' would hide the network's definition file, and nft chain
// names and iptables comments are built from the name.
func NetworkName(name string) error {
	return check("network name", name, MaxNetworkName, "_.-", true)
}

// MaxInterfaceName is IFNAMSIZ-1: Linux interface names are at most 15
// bytes.
const MaxInterfaceName = 15

// InterfaceName checks the name of a network interface berth makes (a
// bridge): 1 to 15 bytes of letters, digits, '_', '-', '.', and not "." or
// "..". The kernel takes more ('@', most punctuation), but ip(8) prints
// a veth as NAME@PEER, and the name goes into firewall rules. what says
// where the name came from ("--bridge").
func InterfaceName(what, name string) error {
	if err := check("interface name", name, MaxInterfaceName, "_-.", false); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// check is the rule every kind shares: not empty, at most maxLen bytes, only
// ASCII letters, digits and the bytes in extra, not "." or "..", and, if
// alnumFirst, a letter or a digit first. Only these bytes are allowed,
// never '/' or NUL, so a valid name is always one plain path element.
func check(kind, name string, maxLen int, extra string, alnumFirst bool) error {
	switch {
	case name == "":
		return errors.New(kind + ": must not be empty")
	case len(name) > maxLen && len(name) > 40:
		return fmt.Errorf("%s %q...: longer than %d bytes", kind, name[:32], maxLen)
	case len(name) > maxLen:
		return fmt.Errorf("%s %q: longer than %d bytes", kind, name, maxLen)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q: must not be a path element", kind, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAlnum(c) || (i > 0 || !alnumFirst) && containsByte(extra, c) {
			continue
		}
		if i == 0 && alnumFirst && containsByte(extra, c) {
			return fmt.Errorf("%s %q: must begin with a letter or a digit", kind, name)
		}
		r, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Errorf("%s %q: character %q not allowed (use letters, digits and %s)", kind, name, r, quoteEach(extra))
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// quoteEach renders "_+-" as "'_', '+', '-'".
func quoteEach(s string) string {
	out := ""
	for i := 0; i < len(s); i++ {
		if i > 0 {
			out += ", "
		}
		out += "'" + s[i:i+1] + "'"
	}
	return out
}
