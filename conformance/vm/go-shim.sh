#!/bin/sh
# `go` in the berth test VM, which has no Go toolchain. The network tests
# build their helper program with `go build -trimpath -o OUT .` in a
# directory holding the helper's go.mod and main.go
# (integration/network_harness_test.go, helper()). run.sh built that program
# on the host from the same files (helpersrc.go), with the same flags; this
# hands it out, but only for that exact command and only when the go.mod and
# main.go in the current directory match what the host built from, byte for
# byte: anything else fails, so a test never runs a helper other than the
# one its own source describes.
dir=/opt/berth/nethelper
if [ $# -ne 5 ] || [ "$1" != build ] || [ "$2" != -trimpath ] || [ "$3" != -o ] || [ "$5" != . ]; then
	echo "go (berth VM): only 'go build -trimpath -o OUT .' of the network tests' helper works here, not: go $*" >&2
	exit 2
fi
if ! sha256sum -c -s "$dir/sums" || [ "$(ls | sort | tr '\n' ' ')" != "$(cat "$dir/files")" ]; then
	echo "go (berth VM): the files in $(pwd) are not the helper sources run.sh built from" >&2
	exit 1
fi
exec cp "$dir/bt-helper" "$4"
