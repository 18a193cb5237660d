package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The container's /etc/hosts, /etc/hostname and /etc/resolv.conf are
// written into its root filesystem by the hook, from the host side. A
// rootfs is untrusted: /etc, or the files themselves, may be symlinks
// pointing anywhere on the host. Every path is therefore resolved inside
// the rootfs (openat2 RESOLVE_IN_ROOT, as if chrooted), and each file is
// replaced by renaming a new file over it, which never follows a symlink
// and never writes through a hardlink shared with another rootfs.

// etcFiles is what goes into the container's /etc.
type etcFiles struct {
	hostname string
	hosts    []byte
	resolv   []byte
}

func hostsFile(hostname string, addr netip.Addr) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if addr.IsValid() {
		fmt.Fprintf(&b, "%s\t%s\n", addr, hostname)
	} else if hostname != "" {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
	}
	return b.Bytes()
}

// hostResolvConf is the host's resolver configuration as a container
// should see it. A host that lists only a loopback stub resolver
// (systemd-resolved's 127.0.0.53, dnsmasq on 127.0.0.1) cannot be asked
// from inside the container's namespace: use the stub's upstream servers.
func hostResolvConf() []byte {
	main := readOr(resolvConfPath("BERTH_NET_RESOLV_CONF", "/etc/resolv.conf"))
	if hasReachableNameserver(main) {
		return main
	}
	upstream := readOr(resolvConfPath("BERTH_NET_UPSTREAM_RESOLV_CONF", "/run/systemd/resolve/resolv.conf"))
	if hasReachableNameserver(upstream) {
		return upstream
	}
	// No usable server known: keep the search domains and options, drop
	// the loopback servers, and say why.
	return append([]byte("# berth: the host's only nameservers are on its loopback, unreachable from here\n"),
		withoutLoopbackNameservers(main)...)
}

func resolvConfPath(env, def string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	return def
}

func readOr(path string) []byte {
	data, _ := os.ReadFile(path)
	return data
}

func nameservers(conf []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}

func hasReachableNameserver(conf []byte) bool {
	for _, a := range nameservers(conf) {
		if !a.IsLoopback() {
			return true
		}
	}
	return false
}

func withoutLoopbackNameservers(conf []byte) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.IsLoopback() {
				continue
			}
		}
		b.WriteString(sc.Text() + "\n")
	}
	return b.Bytes()
}

// write puts the files into rootfs/etc.
func (e etcFiles) write(rootfs string) error {
	root, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	etc, err := openInRoot(root, "etc")
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(root, "etc", 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("rootfs %s: mkdir /etc: %w", rootfs, err)
		}
		etc, err = openInRoot(root, "etc")
	}
	if err != nil {
		return fmt.Errorf("rootfs %s: /etc: %w", rootfs, err)
	}
	defer unix.Close(etc)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"hosts", e.hosts},
		{"hostname", []byte(e.hostname + "\n")},
		{"resolv.conf", e.resolv},
	} {
		if err := replaceFileAt(etc, f.name, f.data); err != nil {
			return fmt.Errorf("rootfs %s: /etc/%s: %w", rootfs, f.name, err)
		}
	}
	return nil
}

// openInRoot opens path as a directory, resolving every component inside
// root: ".." stops at root and absolute symlinks are taken relative to it.
func openInRoot(root int, path string) (int, error) {
	fd, err := unix.Openat2(root, path, &unix.OpenHow{
		Flags:   unix.O_DIRECTORY | unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// replaceFileAt writes data to a new file in dir and renames it over name.
func replaceFileAt(dir int, name string, data []byte) error {
	tmp := "." + name + ".berth-" + strconv.Itoa(os.Getpid())
	fd, err := unix.Openat(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), filepath.Join("etc", tmp))
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dir, tmp, dir, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
	}
	return err
}
