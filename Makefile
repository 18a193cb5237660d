# berth: build, bundles, demo and tests.
#
#   make            build bin/berth
#   make bundles    build the busybox bundle with bin/berth spec
#   make demo       run the busybox container from the bundle
#   make test       unit and integration tests (real containers; run as root)
#   make bench      berth side by side with runc, crun and the CNI plugins

SHELL        := /bin/bash
.SHELLFLAGS  := -o pipefail -c

GO        ?= go
# urfave_cli_no_docs drops the CLI's man-page renderer; runc_nocriu drops
# libcontainer's checkpoint/restore (go-criu and protobuf, 0.7 MB of the
# binary), which berth has no command for.
BUILDTAGS ?= seccomp urfave_cli_no_docs runc_nocriu
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -buildvcs=false -tags "$(BUILDTAGS)" -ldflags "$(LDFLAGS)"

BIN     := $(CURDIR)/bin
BERTH   := $(BIN)/berth
BERTH_NET := $(BIN)/berth-net
BUNDLES := $(CURDIR)/bundles/out

.PHONY: all build bundles demo test unit integration fuzz vet bench clean \
	conformance conformance-runtime-tools conformance-containerd conformance-vm FORCE
all: build

build: $(BERTH) $(BERTH_NET)

# The binaries are always handed to `go build` (FORCE): Go's own cache
# decides what is stale, so no hand-kept list of source directories can miss
# a package (as containerd's `bin/%: cmd/% FORCE` does).
$(BERTH): FORCE
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/berth

# berth-net needs no cgo: netlink and nftables are spoken from Go. It runs
# once per hook, so its start-up is on every container's path:
# urfave_cli_no_docs leaves out the man-page renderer (blackfriday, 1 ms of
# package init per start).
$(BERTH_NET): FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o $@ ./cmd/berth-net

bundles: build
	$(MAKE) -C bundles BERTH=$(BERTH) OUT=$(BUNDLES)

demo: bundles
	@echo "+ berth run -b $(BUNDLES)/busybox demo-$$$$"
	@$(BERTH) run -b $(BUNDLES)/busybox demo-$$$$

vet:
	$(GO) vet -tags "$(BUILDTAGS)" ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) mod tidy -diff

unit:
	$(GO) test -tags "$(BUILDTAGS)" -count=1 $$($(GO) list ./... | grep -v /integration)

# bt-helper is the network tests' helper program, put into their containers.
$(BIN)/bt-helper: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./internal/cmd/bt-helper

integration: bundles $(BIN)/bt-helper
	BERTH_BINARY=$(BERTH) BERTH_BUNDLE=$(BUNDLES)/busybox BERTH_TEST_HELPER=$(BIN)/bt-helper \
	  $(GO) test -tags "$(BUILDTAGS)" -count=1 -timeout 30m -v ./integration/...

# Each fuzz target runs FUZZTIME inputs on top of its checked-in seed corpus
# (testdata/fuzz, which `make unit` already replays as regression tests). A
# count rather than a duration: under load a time-bounded run can fail with
# "context deadline exceeded" while its workers shut down.
FUZZTIME ?= 40000x
FUZZ_TARGETS := ./libruntime/bundle:FuzzParse ./internal/names:FuzzContainerID \
	./hooks/portspec:FuzzParse ./hooks/network:FuzzNewNetwork \
	./hooks/network:FuzzParseMode ./hooks/network:FuzzContainerID
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "+ go test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
	  $(GO) test -tags "$(BUILDTAGS)" -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# Software nobody here wrote, against berth: the OCI runtime-tools suite
# (berth side by side with runc), a real containerd through the runc shim,
# and the lifecycle and cgroup tests in VMs with pure cgroup v2 and pure v1.
conformance: conformance-runtime-tools conformance-containerd conformance-vm
conformance-runtime-tools: build bundles
	bash conformance/runtime-tools.sh
conformance-containerd: build bundles
	BERTH_CTD_NOBUILD=1 bash conformance/containerd/run.sh
conformance-vm: build bundles
	bash conformance/vm/run.sh

test: vet unit integration fuzz conformance

# Side-by-side benchmarks (see bench/README.md): lifecycle against runc and
# crun, network hook setup at container #1, #100 and #500 for each backend.
BENCH_OUT ?= $(CURDIR)/bench/out
bench: bundles
	bash bench/run.sh "$(BENCH_OUT)"

clean:
	rm -rf $(BIN) $(BUNDLES)

FORCE:
