package netlinksafe

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// interruptedDump is a dump that the kernel interrupts the first n times:
// each interrupted call returns a partial result with ErrDumpInterrupted,
// as vishvananda/netlink does, and the next one the whole result.
type interruptedDump struct {
	n, calls int
}

func (d *interruptedDump) dump() ([]string, error) {
	d.calls++
	if d.calls <= d.n {
		return []string{"partial"}, fmt.Errorf("reading the dump: %w", netlink.ErrDumpInterrupted)
	}
	return []string{"a", "b"}, nil
}

// TestDumpRetriesInterrupted checks that an interrupted dump is repeated
// until one completes, and that only the complete result is returned.
func TestDumpRetriesInterrupted(t *testing.T) {
	for _, n := range []int{0, 1, 3, maxAttempts - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := &interruptedDump{n: n}
			got, err := Dump("list things", d.dump)
			if err != nil {
				t.Fatalf("Dump after %d interruptions: expected success, got %v", n, err)
			}
			if strings.Join(got, ",") != "a,b" {
				t.Errorf("Dump after %d interruptions: expected the complete result [a b], got %v", n, got)
			}
			if d.calls != n+1 {
				t.Errorf("Dump after %d interruptions: expected %d calls, got %d", n, n+1, d.calls)
			}
		})
	}
}

// TestDumpGivesUp checks that a dump interrupted maxAttempts times in a row
// fails with an error that names it and still matches ErrDumpInterrupted,
// and returns no partial result.
func TestDumpGivesUp(t *testing.T) {
	d := &interruptedDump{n: maxAttempts + 5}
	got, err := Dump("list things", d.dump)
	if err == nil {
		t.Fatalf("Dump interrupted every time: expected an error, got %v", got)
	}
	if !errors.Is(err, netlink.ErrDumpInterrupted) || !strings.Contains(err.Error(), "list things") {
		t.Errorf("Dump interrupted every time: expected an error naming %q and wrapping ErrDumpInterrupted, got %v", "list things", err)
	}
	if got != nil {
		t.Errorf("Dump interrupted every time: expected no partial result, got %v", got)
	}
	if d.calls != maxAttempts {
		t.Errorf("Dump interrupted every time: expected %d calls, got %d", maxAttempts, d.calls)
	}
}

// TestDumpOtherErrors checks that an error other than an interruption is
// returned at once, unchanged.
func TestDumpOtherErrors(t *testing.T) {
	calls := 0
	boom := errors.New("permission denied")
	_, err := Dump("list things", func() ([]string, error) { calls++; return nil, boom })
	if err != boom || calls != 1 {
		t.Errorf("Dump with a plain error: expected it returned unchanged after 1 call, got %v after %d", err, calls)
	}
}

// TestLinkList checks the wrapper against the kernel: the namespace the
// test runs in has at least its loopback.
func TestLinkList(t *testing.T) {
	links, err := LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().Name == "lo" {
			return
		}
	}
	t.Errorf("LinkList: expected lo among %d links", len(links))
}
