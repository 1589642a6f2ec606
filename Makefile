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

## bench: benchmarks against real hosts (not part of test or CI)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

clean:
	rm -rf $(BIN)
