#!/bin/sh
# /init of the berth test VM (busybox sh; conformance/vm/run.sh builds the
# initramfs around it). Two stages:
#
#  1. On the initramfs (rootfs), copy everything to a tmpfs and switch_root
#     to it: pivot_root(2), which berth does for every container, refuses to
#     move the initramfs itself.
#  2. On the tmpfs: mount proc, sys, devtmpfs, /run and /tmp, load the
#     kernel modules listed in /etc/berth-vm/modules, mount the cgroups the
#     kernel command line asks for (berth_vm.cgroup=v2: cgroup2 only, at
#     /sys/fs/cgroup, every controller enabled at the root; v1: a tmpfs with
#     each v1 controller mounted under it, no cgroup2 anywhere), run the
#     integration test binary with its output between two marker lines,
#     print
#         BERTH-VM-RESULT NONCE: PASS|FAIL passed=N failed=N skipped=N rc=N secs=N
#     and power off. NONCE is berth_vm.nonce of the kernel command line,
#     fresh for each boot: run.sh takes no line without it for a result.
# Its output goes to the first serial port (ttyS0); the kernel's console is
# the second (ttyS1), so that kernel messages never cut into it.
# /usr/local first: run.sh puts iproute2's ip (busybox's has no netns), ss,
# nft and iptables in sbin, for the network tests.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ ! -e /.berth-vm-stage2 ]; then
	mount -t proc proc /proc
	mount -t devtmpfs devtmpfs /dev 2>/dev/null
	exec </dev/ttyS0 >/dev/ttyS0 2>&1
	echo "berth-vm: /init at $(cut -d' ' -f1 /proc/uptime)s"
	mkdir -p /newroot
	mount -t tmpfs -o mode=0755 newroot /newroot
	for f in /*; do
		case "$f" in
		/proc | /sys | /dev | /newroot) ;;
		*) cp -a "$f" /newroot/ ;;
		esac
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev
	: >/newroot/.berth-vm-stage2
	umount /dev 2>/dev/null
	umount /proc
	exec switch_root /newroot /init
	echo "berth-vm: switch_root failed"
	echo o >/proc/sysrq-trigger
	exit 1
fi

# ---- stage 2 -----------------------------------------------------------------

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
# The first serial port: the kernel's console is the second (run.sh).
exec </dev/ttyS0 >/dev/ttyS0 2>&1
hostname berth-vm
ip link set lo up 2>/dev/null

poweroff_now() {
	sync
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 10
}

fail() {
	echo "berth-vm: $*"
	echo "BERTH-VM-RESULT $nonce: FAIL passed=0 failed=0 skipped=0 rc=255 secs=0 ($*)"
	poweroff_now
}

param() { # berth_vm.NAME=VALUE from the kernel command line
	for w in $(cat /proc/cmdline); do
		case "$w" in berth_vm."$1"=*) echo "${w#*=}" ;; esac
	done
}
mode=$(param cgroup)
[ -n "$mode" ] || mode=v2
nonce=$(param nonce)

conf=/etc/berth-vm
echo "berth-vm: up $(cut -d" " -f1 /proc/uptime)s, kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo), cgroup mode $mode"

# The kernel runs modprobe for what it wants loaded on demand (a netlink
# family, an nft expression); there is none here, so a stand-in logs each
# request and fails, and the requests are listed after the tests: a test
# that fails for want of a module says which one.
printf '#!/bin/sh\necho "$*" >>/run/modprobe-requests\nexit 1\n' >/run/modprobe
chmod 755 /run/modprobe
echo /run/modprobe >/proc/sys/kernel/modprobe

# Modules in dependency order (run.sh resolved them with modules.dep).
if [ -s $conf/modules ]; then
	while read -r ko; do
		case "$ko" in
		"") ;;
		"? "*) # a soft dependency: one of several providers may do
			insmod "/lib/modules/$(uname -r)/${ko#\? }" 2>/dev/null || echo "berth-vm: optional module ${ko#\? } did not load"
			;;
		*) insmod "/lib/modules/$(uname -r)/$ko" || fail "insmod $ko failed" ;;
		esac
	done <$conf/modules
	echo "berth-vm: modules loaded: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
fi

case "$mode" in
v2)
	mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
	for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
		echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || fail "enable the $c controller"
	done
	if awk '$3 == "cgroup" {found=1} END {exit !found}' /proc/mounts; then fail "a cgroup v1 hierarchy is mounted in v2 mode"; fi
	echo "berth-vm: cgroup2 at /sys/fs/cgroup, subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
	;;
v1)
	mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup || fail "mount the cgroup tmpfs"
	# The layout systemd makes: co-mounted cpu,cpuacct and net_cls,net_prio
	# with a symlink for each controller's name.
	for h in cpuset cpu,cpuacct blkio memory devices freezer net_cls,net_prio perf_event hugetlb pids rdma misc; do
		ok=
		for c in $(echo "$h" | tr , ' '); do
			awk -v c="$c" '$1 == c && $4 == 1 {found=1} END {exit !found}' /proc/cgroups && ok=1
		done
		[ -n "$ok" ] || continue
		mkdir -p "/sys/fs/cgroup/$h"
		mount -t cgroup -o "$h" cgroup "/sys/fs/cgroup/$h" || fail "mount the v1 $h hierarchy"
		case "$h" in *,*)
			for c in $(echo "$h" | tr , ' '); do ln -s "$h" "/sys/fs/cgroup/$c"; done
			;;
		esac
	done
	if grep -q cgroup2 /proc/mounts; then fail "cgroup2 is mounted in v1 mode"; fi
	echo "berth-vm: cgroup v1 hierarchies: $(ls /sys/fs/cgroup | tr '\n' ' ')"
	;;
*)
	fail "unknown berth_vm.cgroup=$mode"
	;;
esac

export BERTH_BINARY=/opt/berth/bin/berth BERTH_BUNDLE=/opt/berth/bundle BERTH_TEST_HELPER=/opt/berth/bin/bt-helper HOME=/root TMPDIR=/tmp
export GOTRACEBACK=all
run=$(cat $conf/run.$mode)
skip=$(cat $conf/skip)
parallel=$(cat $conf/parallel)
timeout=$(cat $conf/timeout)
if [ -x $conf/pre.sh ]; then
	echo "berth-vm: running $conf/pre.sh"
	(cd /tmp && $conf/pre.sh) 2>&1 | sed 's/^/pre: /'
fi
cd /opt/berth/integration || fail "no /opt/berth/integration"
echo "berth-vm: running the integration tests matching $run${skip:+, skipping $skip} (parallel $parallel, timeout $timeout)"
start=$(cut -d. -f1 /proc/uptime)
echo "BERTH-VM-TESTS-BEGIN $nonce"
set -- -test.v -test.run "$run" -test.parallel "$parallel" -test.timeout "$timeout"
[ -z "$skip" ] || set -- "$@" -test.skip "$skip"
{
	./integration.test "$@"
	echo $? >/tmp/test.rc
} 2>&1 | tee /tmp/test.out
rc=$(cat /tmp/test.rc 2>/dev/null || echo 255)
echo "BERTH-VM-TESTS-END $nonce"
took=$(($(cut -d. -f1 /proc/uptime) - start))

# Top-level tests only ("--- PASS: TestX" without indentation).
passed=$(grep -c '^--- PASS: ' /tmp/test.out)
failed=$(grep -c '^--- FAIL: ' /tmp/test.out)
skipped=$(grep -c '^--- SKIP: ' /tmp/test.out)
verdict=PASS
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] || verdict=FAIL
grep -E '^--- (FAIL|SKIP): ' /tmp/test.out | sed 's/^/berth-vm: /'
if [ -s /run/modprobe-requests ]; then
	# A command naming a network device that does not exist makes the
	# kernel ask for "netdev-NAME" and "NAME": not modules, left out.
	reqs=$(sed 's/^-q -- //' /run/modprobe-requests | sort -u)
	for r in $reqs; do
		case "$r" in netdev-*) reqs=$(echo "$reqs" | grep -vx -e "$r" -e "${r#netdev-}") ;; esac
	done
	[ -z "$reqs" ] || echo "berth-vm: the kernel asked for modules that are not in the VM: $(echo $reqs)"
fi
echo "BERTH-VM-RESULT $nonce: $verdict passed=$passed failed=$failed skipped=$skipped rc=$rc secs=$took cgroup=$mode"
poweroff_now
