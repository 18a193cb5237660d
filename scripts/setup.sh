#!/usr/bin/env bash
# Installs everything berth needs to build and test on a fresh Debian 12 machine,
# as root: Debian packages, then a Go toolchain new enough for runc 1.5's
# libcontainer (Go >= 1.25). Safe to run again; it skips what is already there.
set -euo pipefail

GO_MIN=1.25
GO_TOOLCHAIN=1.25.7
PACKAGES=(
	ca-certificates gcc libc6-dev make pkg-config libseccomp-dev  # cgo build with seccomp
	busybox-static jq                                              # bundles
	iproute2 iptables nftables procps psmisc util-linux            # tests and networking
	runc                                                           # side-by-side comparison
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# go_ok prints the path of a go binary whose version is at least GO_MIN.
go_ok() {
	local go
	for go in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /root/.cache/berth-go/go/bin/go; do
		[ -x "$go" ] || continue
		local v
		v=$("$go" env GOVERSION 2>/dev/null | sed 's/^go//') || continue
		if [ "$(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | head -n1)" = "$GO_MIN" ]; then
			echo "$go"
			return 0
		fi
	done
	return 1
}

if ! GO=$(go_ok); then
	# Debian 12 ships Go 1.19. Use it only to fetch the official toolchain
	# module (golang.org/toolchain) from the Go module proxy, as `go` itself
	# does for GOTOOLCHAIN, and unpack it beside berth's cache.
	echo "setup: fetching Go $GO_TOOLCHAIN through the Go module proxy" >&2
	dpkg-query -W golang-go >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go unzip >/dev/null
	mod="golang.org/toolchain@v0.0.1-go${GO_TOOLCHAIN}.linux-amd64"
	tmp=$(mktemp -d)
	(cd "$tmp" && GOFLAGS=-mod=mod GOPATH="$tmp/gopath" /usr/bin/go mod download -x "$mod" >/dev/null 2>&1 || true)
	zip=$(find "$tmp/gopath/pkg/mod/cache/download/golang.org/toolchain" -name "*.zip" | head -n1)
	[ -n "$zip" ] || { echo "setup: could not download $mod" >&2; exit 1; }
	rm -rf /root/.cache/berth-go && mkdir -p /root/.cache/berth-go/go
	unzip -q "$zip" -d "$tmp/unz"
	cp -a "$tmp/unz/golang.org/toolchain@v0.0.1-go${GO_TOOLCHAIN}.linux-amd64/." /root/.cache/berth-go/go/
	chmod -R u+w "$tmp" && rm -rf "$tmp"
	GO=$(go_ok) || { echo "setup: Go toolchain unusable" >&2; exit 1; }
fi
echo "$GO"
