# mno — see README.md. `make lab` is the first command on a fresh machine, `make test` the one
# command CI runs.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
# urfave/cli without its man-page and markdown generators (mno uses neither): their
# markdown library's package init cost every start of mno about a millisecond.
TAGS     := urfave_cli_no_docs
# mno is built static (no cgo: Go's own DNS resolver): it runs on any Linux and starts without
# the dynamic loader mapping libc (fewer page faults at every start; see bench/RESULTS.md).
STATIC   := CGO_ENABLED=0
PKGS     := ./...
# The Debian packages the lab and the tests need: OpenSSH's sshd (and ssh-keygen), sudo and
# visudo, iproute2 (network namespaces), util-linux (unshare, nsenter, flock), procps, coreutils
# and mawk (the nodes' shims), curl (in nodes and the walk-through), systemd (systemd-analyze,
# which checks the units `mno install systemd` writes), iptables (in VPS nodes: adopt hands ports
# 80/443 over from MyNodeOne's Traefik). See lab/hosts/doc.go.
DEB_PACKAGES := openssh-server openssh-client sudo iproute2 util-linux procps coreutils mawk systemd curl iptables

.PHONY: all build install lab deps generate test test-short tools lint fmt vet bench clean

all: build

## build: compile bin/mno
build:
	$(STATIC) $(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/mno ./cmd/mno

## generate: precompiled.bin, the embedded playbooks and roles compiled ahead of time (after
## editing a .star file under playbooks/ or roles/; TestPrecompiledUpToDate says when)
generate:
	$(GO) generate .

## install: install mno into $GOBIN
install:
	$(STATIC) $(GO) install -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" ./cmd/mno

## lab: from a fresh Debian or Ubuntu machine with Go, as root: the Debian packages the lab needs
## (make deps), bin/mno, and a lab of real nodes (mno lab up; already up: says so). The first
## time it builds kube-apiserver and etcd (Traefik builds on in the background).
lab: deps build
	$(BIN)/mno lab up --reuse

## deps: as root on Debian or Ubuntu, install the missing packages of DEB_PACKAGES (saying which
## first); elsewhere, say what is missing
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps: not a Debian or Ubuntu machine; the lab and the tests need (Debian names):$$missing"; exit 1; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: the lab and the tests need these Debian packages:$$missing; as root: apt-get install -y$$missing"; exit 1; \
	fi; \
	echo "deps: installing the Debian packages the lab and the tests need:$$missing (apt-get install -y$$missing)"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing

## tools: build (or reuse, cached in ~/.cache/mno) the real kube-apiserver, etcd and Traefik the tests use
tools:
	$(GO) run ./lab/cmd/buildtools

## test: every test, against real sshd hosts, a real kube-apiserver and a real Traefik
test: tools
	$(GO) test -count=1 -timeout 30m $(PKGS)

## test-short: the tests that need no real servers (they skip outside CI)
test-short:
	$(GO) test -count=1 -short $(PKGS)

## lint: gofmt check and go vet
lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

## bench: start-up (hyperfine: mno version and mno run hello next to a minimal Go program, with
## a profile of what is left), then `mno run sync` vs Ansible vs a raw SSH client on N real sshd
## hosts, and a 1000-host in-process scale run; writes bench/RESULTS.md and the README's
## performance section (not part of test or CI). Narrow it with BENCH_N=1,10 (none: no sync) BENCH_RUNS=5
## BENCH_SCALE=0 BENCH_STARTUP=0 (defaults 1,10,50,100; 5; 1000; 1): what a narrowed run does not
## measure is kept from the last run, marked. BENCH_ANSIBLE_RUNS=5 times Ansible in every
## repetition at N >= 50 too (default 3). BENCH_OTHER=path/to/mno BENCH_OTHER_LABEL="mno before"
## times another build alongside (start-up and sync).
BENCH_VARS = $(foreach v,BENCH_N BENCH_RUNS BENCH_SCALE BENCH_STARTUP BENCH_ANSIBLE_RUNS,$(if $($(v)), $(v)=$($(v))))
BENCH_OTHER_TOOLS := mno,mno-other,floor,ansible
bench: tools
	@command -v ansible-playbook >/dev/null 2>&1 || { \
		echo "bench: ansible-playbook is missing: installing Debian's ansible (apt-get install -y ansible)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible; }
	@command -v hyperfine >/dev/null 2>&1 || { \
		echo "bench: hyperfine is missing: installing Debian's hyperfine (apt-get install -y hyperfine)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine; }
	$(STATIC) $(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/mno ./cmd/mno
	$(GO) build -trimpath -o $(BIN)/mno-bench-floor ./bench/floor
	$(GO) build -trimpath -o $(BIN)/mno-bench-rusage ./bench/rusage
	$(STATIC) $(GO) build -trimpath -o $(BIN)/mno-bench-minimal ./bench/minimal
	BENCH_COMMAND="make bench$(BENCH_VARS)" \
		$(GO) run ./bench/syncbench -mno $(BIN)/mno -floor $(BIN)/mno-bench-floor -rusage $(BIN)/mno-bench-rusage \
		-minimal $(BIN)/mno-bench-minimal \
		$(if $(BENCH_N),-n $(BENCH_N)) $(if $(BENCH_RUNS),-runs $(BENCH_RUNS)) $(if $(BENCH_SCALE),-scale $(BENCH_SCALE)) \
		$(if $(BENCH_ANSIBLE_RUNS),-ansible-runs $(BENCH_ANSIBLE_RUNS)) $(if $(filter 0,$(BENCH_STARTUP)),-startup=false) \
		$(if $(BENCH_OTHER),-other-mno $(BENCH_OTHER) -other-label "$(or $(BENCH_OTHER_LABEL),mno-other)" -tools $(BENCH_OTHER_TOOLS))

clean:
	rm -rf $(BIN)
