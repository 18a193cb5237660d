// Package netlinksafe retries netlink dumps that the kernel interrupted.
//
// A dump (ip link show, ip route show) is read in several messages; when
// the table changes between two of them, as it does while other containers
// are being set up, the kernel flags the dump NLM_F_DUMP_INTR and
// vishvananda/netlink (v1.2.1 and later) returns ErrDumpInterrupted with a
// result that may miss entries or hold stale ones. berth decides from its
// dumps what is free (host routes) and what to delete (gc), so it never uses
// an interrupted one: it dumps again, and gives up with an error after
// maxAttempts. (The CNI plugins' pkg/netlinksafe retries too, but returns
// the last partial result; a partial list of routes could let a new network
// overlap one that was missed.)
package netlinksafe

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// maxAttempts bounds the dumps of one call. Each interruption means the
// table changed during the dump; a table that changes during ten dumps in a
// row is being rewritten by something that will not stop soon.
const maxAttempts = 10

// Dump calls dump until it returns a result that was not interrupted and
// returns that result, or returns an error naming what after maxAttempts
// interrupted dumps. Any other error is returned at once, unchanged.
func Dump[T any](what string, dump func() (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		v, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
		if attempt == maxAttempts {
			return zero, fmt.Errorf("%s: the kernel interrupted %d dumps in a row (the table kept changing): %w", what, maxAttempts, err)
		}
	}
}

// LinkList is netlink.LinkList (ip link show), retried when interrupted.
func LinkList() ([]netlink.Link, error) {
	return Dump("list links", netlink.LinkList)
}

// RouteList is netlink.RouteList (ip route show [dev LINK]), retried when
// interrupted.
func RouteList(link netlink.Link, family int) ([]netlink.Route, error) {
	return Dump("list routes", func() ([]netlink.Route, error) { return netlink.RouteList(link, family) })
}

// AddrList is netlink.AddrList (ip addr show [dev LINK]), retried when
// interrupted.
func AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	return Dump("list addresses", func() ([]netlink.Addr, error) { return netlink.AddrList(link, family) })
}
