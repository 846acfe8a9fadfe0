# sollwert: see README.md. Targets install what they need on Debian when run as root.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILT ?= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.built=$(BUILT)
TEST_PKGS := ./...
# Debian packages the tests drive for real.
TEST_TOOLS := nmap ndiff snmpd snmp iproute2 prometheus-alertmanager nagios4-core icinga2 rpm systemd chromium ansible-core prometheus libvirt-daemon puppetdb postgresql dbconfig-no-thanks default-jre-headless

.PHONY: all build examples proto package test bench demo deps test-deps fmt vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sollwert ./cmd/sollwert

# Plugins, each its own module built against sdk/ alone, land in
# bin/plugins, a ready plugin_dir.
EXAMPLE_PLUGINS := hostsfile
# Provider adapters in plugins/NAME, each its own module against sdk/.
PROVIDER_PLUGINS := libvirt digitalocean openstack aws puppetdb
examples:
	@mkdir -p bin/plugins
	@for p in $(EXAMPLE_PLUGINS); do \
		echo "building bin/plugins/sollwert-plugin-$$p"; \
		(cd examples/plugin-$$p && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o ../../bin/plugins/sollwert-plugin-$$p .) || exit 1; \
	done
	@for p in $(PROVIDER_PLUGINS); do \
		echo "building bin/plugins/sollwert-plugin-$$p"; \
		(cd plugins/$$p && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o ../../bin/plugins/sollwert-plugin-$$p .) || exit 1; \
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

# package builds dist/*.deb and dist/*.rpm with pinned nfpm: the static
# binary, the default config (never overwritten by upgrades), the systemd
# unit and the sollwert user (packaging/).
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
ARCH ?= $(shell $(GO) env GOARCH)
DIST ?= dist
# Debian and RPM versions must start with a digit: a tag v1.2.3 gives
# 1.2.3, an untagged commit 0.1.0~gitDATE.HASH (sorts before 0.1.0).
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --exact-match 2>/dev/null); \
	if [ -n "$$v" ]; then echo "$${v#v}"; else git log -1 --format='0.1.0~git%cd.%h' --date=format:%Y%m%d 2>/dev/null || echo 0.1.0~dev; fi)
package:
	@$(MAKE) --no-print-directory build VERSION="$(PKG_VERSION)"
	@test -x bin/tools/nfpm || GOBIN=$(CURDIR)/bin/tools $(GO) install $(NFPM)
	@mkdir -p $(DIST)
	@for p in deb rpm; do \
		VERSION="$(PKG_VERSION)" ARCH="$(ARCH)" bin/tools/nfpm package --config packaging/nfpm.yaml --packager $$p --target $(DIST)/ || exit 1; \
	done

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
	@for p in $(PROVIDER_PLUGINS); do \
		(cd plugins/$$p && $(GO) vet ./... && $(GO) test -race -count=1 ./...) || exit 1; \
	done
	$(GO) test -race -count=1 -timeout 15m $(TEST_PKGS)
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime 15s ./plugins/nmap/nmapxml/

bench: test-deps
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./...
	cd sdk && $(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

demo:
	@$(MAKE) --no-print-directory deps-demo PKGS="nmap ncat curl"
	@$(MAKE) --no-print-directory build
	./examples/demo.sh

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './vendor/*')

clean:
	rm -rf bin dist
