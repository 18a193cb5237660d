#!/usr/bin/env bash
# conformance/vm/run.sh [v2|v1|all] — run berth's integration tests in a
# QEMU VM (software emulation, no KVM) whose cgroups are pure v2 or pure v1,
# whatever this host has. See conformance/vm/README.md.
#
#   sudo bash conformance/vm/run.sh        # both VMs: v2, then v1
#
# Everything it builds or downloads goes to one temporary directory that is
# removed on exit, failure and interrupt included; only the apt packages it
# installs, Go's build cache and what BERTH_VM_CACHE or BERTH_VM_LOGS ask
# for stay.
#
# Environment (all optional):
#   BERTH_VM_TESTS     -test.run regexp for both VMs (default: lifecycle,
#                      exec, state, resources, cgroups and a network sample,
#                      a little different per VM; see below)
#   BERTH_VM_SKIP      -test.skip regexp (default: none)
#   BERTH_VM_PARALLEL  -test.parallel in the VM (default 2)
#   BERTH_VM_TIMEOUT   seconds one VM may run, boot to power-off (default 295: two VMs stay within 10 minutes)
#   BERTH_VM_MODULES   kernel modules to insmod, with their dependencies
#                      (default: overlay, veth, bridge, the netfilter modules
#                      of berth-net's nftables and iptables backends, and a
#                      few more; see below)
#   BERTH_VM_MEM, BERTH_VM_SMP   guest memory and CPUs (default 1536M, 2)
#   BERTH_VM_ACCEL     QEMU -accel for both VMs (default: tcg for v2,
#                      tcg,thread=single for v1; see below)
#   BERTH_VM_KERNEL_PKG  Debian kernel package (default: what linux-image-amd64 depends on)
#   BERTH_VM_CACHE     keep the kernel .deb and its unpacked tree in this
#                      directory across runs (default: none, fetched each run)
#   BERTH_VM_LOGS      copy the serial logs and the build log to this directory
#   BERTH_VM_PRE       a sh script run in the VM (as root, cgroups mounted,
#                      BERTH_BINARY and BERTH_BUNDLE set) before the tests,
#                      for experiments; its output is prefixed "pre: "
set -euo pipefail
# apt-get, depmod and ip live in sbin, which a CI environment's PATH may lack.
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/go/bin

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode=${1:-all}
case "$mode" in v1 | v2) modes=("$mode") ;; all) modes=(v2 v1) ;; *)
	echo "usage: $0 [v2|v1|all]" >&2
	exit 2
	;;
esac

# The tests of what depends on the cgroup layout, which is what the VMs are
# for, run in both: the lifecycle (each create makes a cgroup, each delete
# removes it, kill --all and delete -f signal through it, ps reads it),
# exec (joins it), state, events and the resource limits (the TestCgroup*
# tests read the v1 or the v2 file of each setting), with the CLI's exit
# codes and signal forms, which cost little. TestConfigResources, TestUpdate
# and TestPauseResume read v1 files only: on v2 they would start their
# container and skip, so they run in the v1 VM only. TestNetDefaultNetwork
# (the default bridge network, a published port reached from another
# namespace) shows in both that the modules load and work; the network does
# not depend on the cgroup layout, so the v2 VM alone runs more of it: the
# bridge network with each firewall backend (iptables-nft goes through
# nft_compat and the xt_* modules) and the host, none and container modes,
# and the UDP conntrack flush: Debian 12's 6.1 cannot filter a conntrack
# deletion in the kernel, so berth-net falls back to its dump there, which
# the host's newer kernel never exercises.
core='TestRunPassesExitCode|TestRunKeep|TestRunDetach|TestRunKilledBySignalExits137|TestKillSignalForms|TestKillAllOfStoppedContainer|TestKillDefaultSignalIsTERM|TestFailingCommandsExit1|TestDeleteRunningFails|TestDeleteCreatedFails|TestStateAndTransitions|TestList|TestPs|TestExec|TestExecInStoppedContainerFails|TestEventsStats|TestEventsInterval|TestCgroup.*|TestNetDefaultNetwork'
declare -A tests=(
	[v1]=${BERTH_VM_TESTS:-"^($core|TestConfigResources|TestUpdate|TestPauseResumeAndForceDeletePaused)\$"}
	[v2]=${BERTH_VM_TESTS:-"^($core|TestNetBridge|TestNetModes|TestNetUDPConntrackFlush)\$"}
)
skip=${BERTH_VM_SKIP:-}
parallel=${BERTH_VM_PARALLEL:-2}
vm_timeout=${BERTH_VM_TIMEOUT:-295}
# What a normal host's kernel loads on demand through modprobe, which the
# VM does not have (its init logs every such request; see init.sh): veth
# and bridge for the container links; the netfilter modules of the nftables
# backend's expressions (nat chains, masq, dnat, ct, fib) and of
# iptables-nft's matches and targets (through nft_compat); tcp_diag and
# udp_diag for ss;
# overlay, with which libcontainer seals /proc/self/exe for each container
# init (exeseal; without it, it copies the whole binary each time).
default_modules='overlay veth bridge nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_fib_inet nft_fib_ipv4 nft_compat nf_conntrack_netlink xt_addrtype xt_comment xt_conntrack xt_MASQUERADE xt_nat xt_tcpudp tcp_diag udp_diag'
modules=${BERTH_VM_MODULES-$default_modules}
mem=${BERTH_VM_MEM:-1536M}
smp=${BERTH_VM_SMP:-2}
# The v1 VM runs its vCPUs in one host thread. Twice in about 17 boots with
# a thread per vCPU (QEMU 7.2), both vCPUs of the v1 VM spun on the INT3 of
# a jump label being patched (get_signal, where freezing() tests the static
# key the v1 freezer switches) until the VM's timeout: most likely
# multi-threaded TCG livelocking on code patched across vCPUs. The v2
# freezer does not switch that key, and the v2 VM never hung. One thread
# serializes the vCPUs, for about 20% more time in the v1 VM.
declare -A accel=([v1]=${BERTH_VM_ACCEL:-tcg,thread=single} [v2]=${BERTH_VM_ACCEL:-tcg})
buildtags="seccomp urfave_cli_no_docs runc_nocriu" # as the Makefile's BUILDTAGS

log() { printf '[vm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (sudo bash $0): it installs packages and the tests run containers"

# ---- the work directory and cleanup ----------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-vm.XXXXXX")
qemu_pid=
cleanup() {
	local rc=$?
	# Only the QEMU this script started, by its pid.
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	if [ -n "${BERTH_VM_LOGS:-}" ]; then
		mkdir -p "$BERTH_VM_LOGS"
		cp "$work"/*.log "$BERTH_VM_LOGS"/ 2>/dev/null || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools ---------------------------------------------------------------------

apt_updated=
apt_update() {
	[ -z "$apt_updated" ] || return 0
	log "apt-get update"
	apt-get update -q >>"$work/apt.log" 2>&1 || {
		tail -20 "$work/apt.log" >&2
		die "apt-get update"
	}
	apt_updated=1
}

# apt_install PKG... installs what is missing; a failure is retried once
# after apt-get update (a fresh container has no package lists).
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	log "installing $*"
	if ! apt-get install -y -q --no-install-recommends "$@" >>"$work/apt.log" 2>&1; then
		apt_update
		apt-get install -y -q --no-install-recommends "$@" >>"$work/apt.log" 2>&1 || {
			tail -20 "$work/apt.log" >&2
			die "apt-get install $*"
		}
	fi
}

# The tools the network tests drive (integration/network_harness_test.go)
# are copied from this host into the VM, with their libraries. nsenter too:
# busybox's runs its own applets (its ip has no netns) before PATH.
net_tools=(ip ss nft iptables iptables-save iptables-restore nsenter)

need_tools() {
	local pkgs=() p
	command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
	command -v cpio >/dev/null || pkgs+=(cpio)
	command -v depmod >/dev/null || pkgs+=(kmod)
	# The busybox bundle and the VM's own userland; make and the cgo build
	# of berth (libseccomp).
	dpkg -s busybox-static >/dev/null 2>&1 || pkgs+=(busybox-static)
	for p in make gcc pkg-config jq; do command -v $p >/dev/null || pkgs+=("$p"); done
	dpkg -s libseccomp-dev >/dev/null 2>&1 || pkgs+=(libseccomp-dev)
	command -v ss >/dev/null || pkgs+=(iproute2)
	command -v nft >/dev/null || pkgs+=(nftables)
	command -v iptables-save >/dev/null || pkgs+=(iptables)
	command -v nsenter >/dev/null || pkgs+=(util-linux)
	[ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
	busybox=/bin/busybox
	if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is not static (busybox-static provides a static one)"; fi
	command -v go >/dev/null || die "go not found (looked in PATH and /usr/local/go/bin)"
}

# ---- kernel --------------------------------------------------------------------

# kernel_pkg sets pkg to the kernel package to boot: what the metapackage
# linux-image-amd64 depends on (linux-image-6.1.0-NN-amd64 on Debian 12).
kernel_pkg() {
	pkg=${BERTH_VM_KERNEL_PKG:-}
	[ -z "$pkg" ] || return 0
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		apt_update
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package"
}

# fetch_kernel sets kroot (the unpacked package), kver and vmlinuz.
fetch_kernel() {
	local deb cache=${BERTH_VM_CACHE:-$work/kernel}
	kernel_pkg
	mkdir -p "$cache/debs"
	deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | tail -1 || true)
	if [ -z "$deb" ]; then
		log "downloading $pkg (apt-get download: nothing is installed)"
		if ! (cd "$cache/debs" && apt-get download "$pkg" >>"$work/apt.log" 2>&1); then
			# Stale package lists name a kernel the mirror no longer has.
			apt_update
			kernel_pkg
			(cd "$cache/debs" && apt-get download "$pkg" >>"$work/apt.log" 2>&1) || {
				tail -5 "$work/apt.log" >&2
				die "apt-get download $pkg"
			}
		fi
		deb=$(ls "$cache/debs/${pkg}_"*.deb | tail -1)
	fi
	kroot="$cache/$(basename "$deb" .deb)"
	if [ ! -e "$kroot/.done" ]; then
		rm -rf "$kroot"
		dpkg-deb -x "$deb" "$kroot"
		: >"$kroot/.done"
	fi
	kver=$(ls "$kroot/lib/modules" | head -1)
	vmlinuz="$kroot/boot/vmlinuz-$kver"
	[ -f "$vmlinuz" ] || die "no $vmlinuz in $deb"
	# The package leaves modules.dep to depmod at install time.
	if [ ! -s "$kroot/lib/modules/$kver/modules.dep" ]; then
		depmod -b "$kroot" "$kver" || die "depmod -b $kroot $kver"
	fi
	log "kernel $kver ($(basename "$deb"))"
}

# resolve_modules NAME... prints the .ko paths (relative to the module tree)
# to insmod, dependencies first, each once; built-in modules are skipped.
# kmod's `modprobe --show-depends` works the order out, soft dependencies
# (modules.softdep, e.g. nf_conntrack's "pre: nf_defrag_ipv4") included.
# Only the modules asked for are printed bare; everything else they pull in
# is printed as "? PATH": the VM tries those and goes on if one does not
# load (crc32c_intel without SSE4.2), and a hard dependency that did not
# load still fails the insmod of the module asked for.
resolve_modules() {
	local mdir="$kroot/lib/modules/$kver" name line ko i last
	declare -A seen=() hard=()
	local -a order=() lines
	for name in "$@"; do
		mapfile -t lines < <(modprobe -C /dev/null -d "$kroot" -S "$kver" --show-depends "$name" 2>>"$work/build.log") ||
			die "no module $name in $kver (modprobe --show-depends)"
		[ ${#lines[@]} -gt 0 ] || die "no module $name in $kver"
		last=$((${#lines[@]} - 1))
		for i in "${!lines[@]}"; do
			line=${lines[i]}
			case $line in
			"builtin "*)
				[ "$i" != "$last" ] || log "module $name is built in"
				continue
				;;
			"insmod "*) ;;
			*) die "modprobe --show-depends $name: unexpected line: $line" ;;
			esac
			ko=${line#insmod }
			ko=${ko%% *}
			ko=${ko#"$mdir/"}
			[ "$i" != "$last" ] || hard[$ko]=1
			[ -z "${seen[$ko]:-}" ] || continue
			seen[$ko]=1
			order+=("$ko")
		done
	done
	for ko in "${order[@]}"; do
		if [ -n "${hard[$ko]:-}" ]; then echo "$ko"; else echo "? $ko"; fi
	done
}

# ---- berth and the tests ---------------------------------------------------------

# build makes berth, berth-net and the bundles with the repository's
# Makefile, into the work directory: the checkout's bin/ and bundles/out
# stay as they are, and a build running there at the same time (make
# integration) cannot swap the binaries under the VM.
build() {
	log "building berth, berth-net and the busybox bundle (make build bundles)"
	make -C "$repo" BIN="$work/bin" BUNDLES="$work/bundles" build bundles >>"$work/build.log" 2>&1 || {
		tail -30 "$work/build.log" >&2
		die "make build bundles"
	}
	log "building the integration test binary (go test -c)"
	(cd "$repo" && go test -c -tags "$buildtags" -o "$work/integration.test" ./integration/) >>"$work/build.log" 2>&1 || {
		tail -30 "$work/build.log" >&2
		die "go test -c ./integration/"
	}
	build_net_helper
}

# build_net_helper builds the network tests' helper program; the VM has no
# Go toolchain, and init.sh names it to the tests in BERTH_TEST_HELPER.
build_net_helper() {
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/bt-helper" ./internal/cmd/bt-helper) >>"$work/build.log" 2>&1 || {
		tail -5 "$work/build.log" >&2
		die "building the network tests' helper"
	}
}

# copy_libs BINARY... copies the shared libraries the binaries need (ldd)
# into the staging dir, at the same paths.
copy_libs() {
	local lib f
	for lib in $(for f in "$@"; do ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; done | sort -u); do
		[ -e "$stage$lib" ] && continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done
}

# copy_net_tools puts this host's ip, ss, nft, iptables (nft flavour) and
# nsenter in the VM's /usr/local/sbin, first in its PATH.
copy_net_tools() {
	local t src bins=() xt
	mkdir -p "$stage/usr/local/sbin"
	for t in "${net_tools[@]}"; do
		src=$(command -v "$t") || die "$t not found on this host"
		src=$(readlink -f "$src")
		cp "$src" "$stage/usr/local/sbin/$(basename "$src")"
		[ "$(basename "$src")" = "$t" ] || ln -sf "$(basename "$src")" "$stage/usr/local/sbin/$t"
		bins+=("$src")
	done
	# iptables loads its matches and targets (libxt_*.so) with dlopen.
	xt=$(readlink -f "$(dirname "$(ldd "$(readlink -f "$(command -v iptables)")" | awk '/libxtables/ {print $3}')")/xtables")
	if [ -d "$xt" ]; then
		mkdir -p "$stage$xt"
		cp -a "$xt/." "$stage$xt/"
	fi
	copy_libs "${bins[@]}"
	for t in protocols services ethertypes; do [ ! -f "/etc/$t" ] || cp "/etc/$t" "$stage/etc/"; done
}

build_initramfs() {
	stage="$work/initramfs"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,root,etc/berth-vm,opt/berth/bin,opt/berth/integration,lib/modules/"$kver"}
	chmod 1777 "$stage/tmp"
	cp "$busybox" "$stage/bin/busybox"
	local a
	for a in $("$busybox" --list-full); do
		[ -e "$stage/$a" ] || ln -s /bin/busybox "$stage/$a"
	done
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
	install -m 755 "$here/init.sh" "$stage/init"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"

	cp "$work/bin/berth" "$work/bin/berth-net" "$stage/opt/berth/bin/"
	cp "$work/integration.test" "$stage/opt/berth/integration/integration.test"
	[ ! -d "$repo/integration/testdata" ] || cp -a "$repo/integration/testdata" "$stage/opt/berth/integration/"
	copy_libs "$stage/opt/berth/bin/berth" "$stage/opt/berth/bin/berth-net" "$stage/opt/berth/integration/integration.test"
	copy_net_tools
	cp "$work/bt-helper" "$stage/opt/berth/bin/bt-helper"
	# The bundle: its rootfs keeps busybox's applets as hardlinks (one copy).
	mkdir -p "$stage/opt/berth/bundle"
	cp "$work/bundles/busybox/config.json" "$stage/opt/berth/bundle/"
	cp -a "$work/bundles/busybox/rootfs" "$stage/opt/berth/bundle/"

	: >"$stage/etc/berth-vm/modules"
	if [ -n "$modules" ]; then
		local line ko
		# shellcheck disable=SC2086
		resolve_modules $modules >"$work/modules.list"
		while read -r line; do
			ko=${line#"? "}
			case "$ko" in *.ko) ;; *) die "$ko is compressed: busybox insmod loads plain .ko files only" ;; esac
			mkdir -p "$stage/lib/modules/$kver/$(dirname "$ko")"
			cp "$kroot/lib/modules/$kver/$ko" "$stage/lib/modules/$kver/$ko"
			echo "$line" >>"$stage/etc/berth-vm/modules"
		done <"$work/modules.list"
		log "modules to load: $(wc -l <"$stage/etc/berth-vm/modules") ($modules, with their dependencies)"
	fi
	[ -z "${BERTH_VM_PRE:-}" ] || install -m 755 "$BERTH_VM_PRE" "$stage/etc/berth-vm/pre.sh"
	printf '%s\n' "${tests[v1]}" >"$stage/etc/berth-vm/run.v1"
	printf '%s\n' "${tests[v2]}" >"$stage/etc/berth-vm/run.v2"
	printf '%s\n' "$skip" >"$stage/etc/berth-vm/skip"
	printf '%s\n' "$parallel" >"$stage/etc/berth-vm/parallel"
	# go test's own deadline comes before the VM's, so that a hung test
	# prints its goroutines instead of the VM being killed silently.
	local go_timeout=$((vm_timeout - 45))
	[ "$go_timeout" -ge $((vm_timeout / 2)) ] || go_timeout=$((vm_timeout / 2))
	printf '%ss\n' "$go_timeout" >"$stage/etc/berth-vm/timeout"

	initrd="$work/initramfs.cpio.gz"
	(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$initrd"
	log "initramfs $(du -h "$initrd" | cut -f1) ($(du -sh --apparent-size "$stage" | cut -f1) unpacked)"
}

# ---- the VM ----------------------------------------------------------------------

# count KIND FILE counts the top-level "--- KIND: TestX" lines of go test -v.
count() { grep -c "^--- $1: " "$2" || true; }

# run_vm MODE boots the VM, prints its test output and adds a line to the
# summary; it returns 0 only when the VM reported PASS and the host's own
# count of the test output agrees.
run_vm() {
	local m=$1 logf="$work/serial-$1.log" klog="$work/kernel-$1.log" out="$work/tests-$1.out"
	local start rc=0 took result nonce passed failed skipped vm_rc verdict problems
	# A fresh random token per boot: the result line must carry it, so a
	# line from anything but this VM's init (a stale log, a test that
	# printed the marker) cannot pass for the verdict.
	nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
	log "booting the $m VM (${accel[$m]}, $smp CPUs, $mem, timeout ${vm_timeout}s)"
	start=$(date +%s)
	# Two serial ports: the first carries /init's output (the tests), the
	# second is the kernel's console, so that kernel messages (an OOM
	# report, a lockup's stack) never cut into a test line or a marker,
	# and can be kept at warning level.
	timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
		-accel "${accel[$m]}" -cpu max -smp "$smp" -m "$mem" \
		-display none -monitor none -no-reboot -nic none \
		-serial "file:$logf" -serial "file:$klog" \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-append "console=ttyS1 loglevel=5 panic=-1 berth_vm.cgroup=$m berth_vm.nonce=$nonce" \
		</dev/null >"$work/qemu-$m.log" 2>&1 &
	qemu_pid=$!
	wait "$qemu_pid" || rc=$?
	qemu_pid=
	took=$(($(date +%s) - start))
	# Serial lines end with \r\n; the firmware clears the screen with
	# escape sequences.
	touch "$logf" "$klog"
	sed -i 's/\r$//; s/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g' "$logf" "$klog"
	sed -n "/^BERTH-VM-TESTS-BEGIN $nonce\$/,/^BERTH-VM-TESTS-END $nonce\$/p" "$logf" | sed '1d;$d' >"$out"
	cat "$out"
	grep '^berth-vm: ' "$logf" | sed "s/^/[$m] /" >&2 || true
	# Not a verdict of their own (a test's OOM kill is expected), but shown.
	problems=$(grep -E 'BUG:|WARNING:|Oops|Kernel panic|blocked for more than|rcu_.*stall|LOCKUP' "$klog" || true)
	[ -z "$problems" ] || { log "$m: the kernel log has:" && head -20 <<<"$problems" | sed "s/^/[$m kernel] /" >&2; }
	result=$(grep -a -m1 "^BERTH-VM-RESULT $nonce: " "$logf" || true)
	passed=$(count PASS "$out")
	failed=$(count FAIL "$out")
	skipped=$(count SKIP "$out")
	if [ -z "$result" ]; then
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			log "$m: TIMEOUT after ${took}s, no result from the VM; its last lines:"
		else
			log "$m: qemu exited $rc after ${took}s without a result; its last lines:"
		fi
		tail -40 "$logf" >&2
		log "$m: the kernel's last lines:"
		tail -60 "$klog" >&2
		cat "$work/qemu-$m.log" >&2
		summary+=("$(printf '%-3s NO RESULT  %3d run, %3d passed, %3d failed, %3d skipped   VM %4ds (qemu exit %s)' "$m" $((passed + failed)) "$passed" "$failed" "$skipped" "$took" "$rc")")
		return 1
	fi
	# "BERTH-VM-RESULT NONCE: PASS|FAIL passed=N failed=N skipped=N rc=N secs=N"
	verdict=$(awk '{print $3}' <<<"$result")
	vm_rc=$(grep -o ' rc=[0-9]*' <<<"$result" | cut -d= -f2)
	local vm_secs
	vm_secs=$(grep -o ' secs=[0-9]*' <<<"$result" | cut -d= -f2)
	if [ "$verdict" = PASS ] && { [ "$vm_rc" != 0 ] || [ "$failed" != 0 ] || [ "$passed" = 0 ] ||
		! grep -q " passed=$passed failed=$failed " <<<"$result"; }; then
		log "$m: the VM said PASS but its output does not agree (host count: $passed passed, $failed failed): $result"
		verdict=FAIL
	fi
	summary+=("$(printf '%-3s %-9s  %3d run, %3d passed, %3d failed, %3d skipped   VM %4ds (tests %ss, go test exit %s)' "$m" "$verdict" $((passed + failed)) "$passed" "$failed" "$skipped" "$took" "$vm_secs" "$vm_rc")")
	if [ "$verdict" != PASS ]; then
		grep -E '^--- FAIL: ' "$out" | sed "s/^/[$m] /" >&2 || true
		return 1
	fi
}

main() {
	local t0 failed=0 m
	t0=$(date +%s)
	need_tools
	fetch_kernel
	build
	build_initramfs
	log "prepared in $(($(date +%s) - t0))s"
	summary=()
	for m in "${modes[@]}"; do
		run_vm "$m" || failed=1
	done
	{
		echo
		echo "berth VM tests (kernel $kver; top-level tests; run = passed + failed):"
		printf '  %s\n' "${summary[@]}"
		echo "  total $(($(date +%s) - t0))s: $([ $failed = 0 ] && echo PASS || echo FAIL)"
	} >&2
	return $failed
}

main
