# sollwert: see README.md. Targets install what they need on Debian when run as root.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TEST_PKGS := ./...
# Debian packages the tests drive for real.
TEST_TOOLS := nmap ndiff

.PHONY: all build test bench demo deps test-deps fmt vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sollwert ./cmd/sollwert

# deps installs missing Debian packages once (apt-get update only when needed).
deps-%:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing packages:$$missing (run as root or install them)"; exit 1; fi; \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test-deps:
	@$(MAKE) --no-print-directory deps-test PKGS="$(TEST_TOOLS)"

test: test-deps
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	cd sdk && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	$(GO) test -race -count=1 -timeout 15m $(TEST_PKGS)

bench: test-deps
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./...

demo:
	@$(MAKE) --no-print-directory deps-demo PKGS="nmap ncat curl"
	@$(MAKE) --no-print-directory build
	./examples/demo.sh

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './vendor/*')

clean:
	rm -rf bin
