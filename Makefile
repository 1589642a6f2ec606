# mno — see README.md. `make test` is the one command CI runs.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: all build install test test-short tools lint fmt vet bench clean

all: build

## build: compile bin/mno
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/mno ./cmd/mno

## install: install mno into $GOBIN
install:
	$(GO) install -trimpath -ldflags "$(LDFLAGS)" ./cmd/mno

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

## bench: `mno run sync` vs Ansible vs a raw SSH client on N real sshd hosts, and a 1000-host
## in-process scale run; writes bench/RESULTS.md (not part of test or CI). Narrow it with
## BENCH_N=10,50 BENCH_RUNS=5 BENCH_SCALE=0 (defaults 1,10,50,100; 5; 1000); BENCH_ANSIBLE_RUNS=5
## times Ansible in every repetition at N >= 50 too (default 3: there one run takes minutes).
bench: tools
	@command -v ansible-playbook >/dev/null 2>&1 || { \
		echo "bench: ansible-playbook is missing: installing Debian's ansible (apt-get install -y ansible)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible; }
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/mno ./cmd/mno
	$(GO) build -trimpath -o $(BIN)/mno-bench-floor ./bench/floor
	$(GO) build -trimpath -o $(BIN)/mno-bench-rusage ./bench/rusage
	BENCH_COMMAND="make bench$(if $(BENCH_N), BENCH_N=$(BENCH_N))$(if $(BENCH_RUNS), BENCH_RUNS=$(BENCH_RUNS))$(if $(BENCH_SCALE), BENCH_SCALE=$(BENCH_SCALE))$(if $(BENCH_ANSIBLE_RUNS), BENCH_ANSIBLE_RUNS=$(BENCH_ANSIBLE_RUNS))" \
		$(GO) run ./bench/syncbench -mno $(BIN)/mno -floor $(BIN)/mno-bench-floor -rusage $(BIN)/mno-bench-rusage \
		$(if $(BENCH_N),-n $(BENCH_N)) $(if $(BENCH_RUNS),-runs $(BENCH_RUNS)) $(if $(BENCH_SCALE),-scale $(BENCH_SCALE)) \
		$(if $(BENCH_ANSIBLE_RUNS),-ansible-runs $(BENCH_ANSIBLE_RUNS))

clean:
	rm -rf $(BIN)
