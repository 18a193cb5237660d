// Command goprog is asprobe.c in Go: it reports the RLIMIT_AS it has in its
// first package initializer (the Go runtime has already sized its own
// reservations by then, under that limit), maps and touches memory up to
// 64 MiB below the limit, and checks that a mapping past it is refused.
// Same output and exit codes as asprobe.c.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
)

var atStart syscall.Rlimit

func init() { _ = syscall.Getrlimit(syscall.RLIMIT_AS, &atStart) }

// vmSize returns the process's address space (VmSize) in bytes.
func vmSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb uint64
		if _, err := fmt.Sscanf(strings.Join(strings.Fields(sc.Text()), " "), "VmSize: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

func main() {
	const chunk, margin = 16 << 20, 64 << 20
	fmt.Printf("RLIMIT_AS %d %d\n", atStart.Cur, atStart.Max)
	if atStart.Cur == ^uint64(0) {
		fmt.Println("no limit at start")
		os.Exit(2)
	}
	var touched uint64
	var keep [][]byte
	for vmSize()+chunk+margin <= atStart.Cur {
		p, err := syscall.Mmap(-1, 0, chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			fmt.Printf("mmap of 16 MiB failed after %d MiB: %v\n", touched>>20, err)
			os.Exit(3)
		}
		// One byte per MiB: the mapping is real, writable memory, and the
		// limit is on address space, not on what is touched (touching every
		// page of ~1 GiB costs ~0.3 s a run).
		for i := 0; i < len(p); i += 1 << 20 {
			p[i] = 1
		}
		keep = append(keep, p)
		touched += chunk
	}
	fmt.Printf("touched %d MiB\n", touched>>20)
	_, err := syscall.Mmap(-1, 0, margin+chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err == nil {
		fmt.Println("past the limit: allowed")
		os.Exit(4)
	}
	fmt.Println("past the limit: refused")
	fmt.Println("done")
}
