# sollwert: see README.md. Targets install what they need on Debian when run as root.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TEST_PKGS := ./...
# Debian packages the tests drive for real.
TEST_TOOLS := nmap ndiff snmpd snmp iproute2 prometheus-alertmanager nagios4-core icinga2

.PHONY: all build examples proto test bench demo deps test-deps fmt vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sollwert ./cmd/sollwert

# Plugins, each its own module built against sdk/ alone, land in
# bin/plugins, a ready plugin_dir.
EXAMPLE_PLUGINS := hostsfile
examples:
	@mkdir -p bin/plugins
	@for p in $(EXAMPLE_PLUGINS); do \
		echo "building bin/plugins/sollwert-plugin-$$p"; \
		(cd examples/plugin-$$p && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o ../../bin/plugins/sollwert-plugin-$$p .) || exit 1; \
	done

# proto regenerates sdk/proto with pinned generators and Debian's protoc.
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.1
proto:
	@$(MAKE) --no-print-directory deps-proto PKGS="protobuf-compiler"
	GOBIN=$(CURDIR)/bin/tools $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin/tools $(GO) install $(PROTOC_GEN_GO_GRPC)
	cd sdk/proto/pluginv1 && PATH=$(CURDIR)/bin/tools:$$PATH protoc --proto_path=. \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

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
	@for p in $(EXAMPLE_PLUGINS); do \
		(cd examples/plugin-$$p && $(GO) vet ./... && $(GO) test -race -count=1 ./...) || exit 1; \
	done
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
