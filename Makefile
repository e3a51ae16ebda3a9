# mcp-authz: make help lists the targets.
#
# Tools and test components are pinned here and installed by the targets
# that need them into $(CACHE), outside the repo, so a fresh clone needs
# nothing by hand and a second run reuses what the first one built.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export GOTOOLCHAIN := local
CACHE ?= $(or $(MCP_AUTHZ_CACHE),$(HOME)/.cache/mcp-authz)
export MCP_AUTHZ_CACHE := $(CACHE)
BIN := $(CURDIR)/bin
TOOLS := $(CACHE)/bin

GOLANGCI_VERSION := v2.15.0
GHZ_VERSION := v0.121.0
HEY_VERSION := v0.1.4
GRPCURL_VERSION := v1.9.3
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
EVERYTHING_VERSION := 2026.8.31
K8S_MCP_VERSION := 0.0.67
INSPECTOR_VERSION := 2.12.0
NODE22_VERSION := 22.23.3
HELM_VERSION := v3.22.0
# The official MCP conformance suite: 0.1.x tests 2025-11-25, the 0.2.x
# prereleases 2026-07-28 (pin the newest).
CONFORMANCE_2025_VERSION := 0.1.16
CONFORMANCE_2026_VERSION := 0.2.0-alpha.12
# The TypeScript SDK as a client: @modelcontextprotocol/sdk (1.x, the
# newest; speaks 2025-11-25 and earlier only) and its successor
# @modelcontextprotocol/client (2.x, speaks 2026-07-28 too).
TSSDK_VERSION := 1.32.2
TSCLIENT_VERSION := 2.4.0

# The release this tree builds; the manifests and the chart name the image
# ghcr.io/mcp-authz/mcp-authz:$(shell cat VERSION) (a test checks they agree).
# Between release tags git describe names the commit instead.
VERSION ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || cat VERSION)
IMAGE_REPO ?= ghcr.io/mcp-authz/mcp-authz
IMAGE_TAG ?= $(VERSION)
IMAGE_PLATFORM ?= linux/$(shell go env GOARCH)
IMAGE_OS := $(word 1,$(subst /, ,$(IMAGE_PLATFORM)))
IMAGE_ARCH := $(word 2,$(subst /, ,$(IMAGE_PLATFORM)))
IMAGE_TAR := $(BIN)/mcp-authz-image.tar
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct)
LDFLAGS := -X main.version=$(VERSION)

GOLANGCI := $(TOOLS)/golangci-lint-$(GOLANGCI_VERSION)
GHZ := $(TOOLS)/ghz-$(GHZ_VERSION)
HEY := $(TOOLS)/hey-$(HEY_VERSION)
GRPCURL := $(TOOLS)/grpcurl-$(GRPCURL_VERSION)
BENCHSTAT := $(TOOLS)/benchstat-$(BENCHSTAT_VERSION)
# Our own checker, not a pinned tool: built from hack/promcheck (its own
# module, pinning Prometheus' parser) into bin/, per work tree; its
# modules and build are cached by Go.
PROMCHECK := $(BIN)/promcheck
NPM_DIR := $(CACHE)/npm-$(EVERYTHING_VERSION)-$(K8S_MCP_VERSION)
EVERYTHING := $(NPM_DIR)/node_modules/@modelcontextprotocol/server-everything/dist/index.js
K8S_MCP := $(NPM_DIR)/node_modules/.bin/kubernetes-mcp-server
# The inspector CLI 2.x sends bearer headers and needs Node 22, installed
# beside it from npm (package node@22).
INSPECTOR_DIR := $(CACHE)/inspector-$(INSPECTOR_VERSION)-node$(NODE22_VERSION)
INSPECTOR := $(INSPECTOR_DIR)/node_modules/.bin/mcp-inspector
HELM := $(TOOLS)/helm-$(HELM_VERSION)
# Node 22, the one installed beside the inspector (same NODE22_VERSION).
NODE22 := $(INSPECTOR_DIR)/node_modules/.bin/node
# Each conformance suite in its own folder; the runner takes the folder.
CONFORMANCE_PKG := node_modules/@modelcontextprotocol/conformance/dist/index.js
CONFORMANCE_2025_DIR := $(CACHE)/conformance-$(CONFORMANCE_2025_VERSION)
CONFORMANCE_2026_DIR := $(CACHE)/conformance-$(CONFORMANCE_2026_VERSION)
# Both TypeScript SDK packages in one folder; tests load them from its
# node_modules (integration/testdata/tsclient.mjs).
TSSDK_DIR := $(CACHE)/tssdk-$(TSSDK_VERSION)-$(TSCLIENT_VERSION)
TSSDK := $(TSSDK_DIR)/node_modules
# go-sdk's conformance server, at the go-sdk version go.mod requires.
EVERYTHING_SERVER := $(BIN)/everything-server

# What the tests find through the environment (each test says so when it
# skips for want of one; make test always sets them).
export MCP_AUTHZ_EVERYTHING := $(EVERYTHING)
export MCP_AUTHZ_K8S_MCP := $(K8S_MCP)
export MCP_AUTHZ_INSPECTOR := $(INSPECTOR)
export MCP_AUTHZ_HELM := $(HELM)
export MCP_AUTHZ_TSSDK := $(TSSDK)

# A count, not a duration: when a duration runs out while the engine still
# gathers its baseline coverage (a slow, loaded machine), go test reports
# "context deadline exceeded" as a failure.
FUZZTIME ?= 1000x
# Fuzz targets: package:Func.
FUZZ_TARGETS := ./mcpparse:FuzzParse ./mcpparse:FuzzRoundTrip ./authz/envoy:FuzzCheck \
  ./identity:FuzzBearerToken ./identity:FuzzVerify ./identity:FuzzTokenInQuery ./front:FuzzBuildCheck \
  ./internal/assertion:FuzzVerify ./internal/assertion:FuzzDecodeWire ./internal/assertion:FuzzAppendWire \
  ./router/session:FuzzOpenSession ./router:FuzzSSE ./router/relay:FuzzUnwrapID ./router/mrtr:FuzzIDKey \
  ./router/catalog:FuzzMirror ./policy:FuzzKeycloakTwins ./policy:FuzzFoldAgreement \
  ./config:FuzzParse ./internal/taskid:FuzzOpen

##@ Everyday

.PHONY: help
help: ## Show this help.
	@awk -v cache='$(CACHE)' 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { h = substr($$0, 5); gsub(/\$$\(CACHE\)/, cache, h); printf "\n\033[1m%s\033[0m\n", h }' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/mcp-authz and the dev tools.
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/mcp-authz ./cmd/mcp-authz
	go build -o $(BIN)/devidp ./cmd/devidp
	go build -o $(BIN)/benchmcp ./hack/benchmcp

.PHONY: run
run: build npm inspector ## Run the whole thing on loopback (dev/): the README's Quick start walks through it.
	hack/run.sh

.PHONY: inspector
inspector: $(INSPECTOR) ## Install the MCP inspector CLI (pinned, with Node 22) as bin/mcp-inspector.
	@mkdir -p $(BIN)
	@printf '#!/bin/sh\n# The pinned MCP inspector (make inspector) with its Node 22 first on PATH.\nPATH='"'"'%s'"'"':"$$PATH" exec '"'"'%s'"'"' "$$@"\n' \
	  '$(INSPECTOR_DIR)/node_modules/.bin' '$(INSPECTOR)' >$(BIN)/mcp-inspector.tmp
	@chmod +x $(BIN)/mcp-inspector.tmp && mv -f $(BIN)/mcp-inspector.tmp $(BIN)/mcp-inspector

.PHONY: test
test: lint manifests-check monitoring-check unit image-test fuzz-short e2e conformance ## Everything that must pass (what CI runs).

.PHONY: unit
unit: npm envtest $(INSPECTOR) $(HELM) ## Unit tests (go test ./...), envtest with a real kube-apiserver.
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" go test -count=1 ./...

.PHONY: e2e
e2e: build npm envtest $(INSPECTOR) $(GRPCURL) $(TSSDK)/.installed ## End-to-end tests with real processes (build tag integration).
	KUBEBUILDER_ASSETS="$$(hack/envtest.sh)" MCP_AUTHZ_GRPCURL=$(GRPCURL) go test -count=1 -tags integration ./integration/...

.PHONY: conformance
conformance: build $(EVERYTHING_SERVER) $(CONFORMANCE_2025_DIR)/$(CONFORMANCE_PKG) $(CONFORMANCE_2026_DIR)/$(CONFORMANCE_PKG) ## Official MCP conformance suites, directly and through mcp-authz; fails on a gap not in hack/conformance/known-gaps.txt; writes docs/conformance.md.
	go build -o $(BIN)/conformance ./hack/conformance
	$(BIN)/conformance -node $(NODE22) \
	  -suite 2025-11-25=$(CONFORMANCE_2025_DIR) -suite 2026-07-28=$(CONFORMANCE_2026_DIR)

.PHONY: lint
lint: $(GOLANGCI) ## gofmt, go vet, golangci-lint and package size (at most 1,500 code lines each).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(GOLANGCI) run ./...
	go run ./hack/pkgsize

.PHONY: fuzz-short
fuzz-short: fuzz-targets-check ## Run each fuzz target briefly (FUZZTIME, default 1000x executions).
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
	  go test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) $$pkg; done

.PHONY: fuzz-targets-check
fuzz-targets-check: ## Fail unless FUZZ_TARGETS names every fuzz test, each where it is (go test -fuzz passes on a name it does not find).
	@want=$$(git grep -h -o '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' | sed 's/^func //' | sort); \
	  have=$$(for t in $(FUZZ_TARGETS); do echo "$${t##*:}"; done | sort); \
	  if [ "$$want" != "$$have" ]; then echo "FUZZ_TARGETS differs from the fuzz tests:"; diff <(echo "$$want") <(echo "$$have") || true; exit 1; fi; \
	  for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	    go test -list "^$$fn$$" $$pkg | grep -x "$$fn" >/dev/null || { echo "FUZZ_TARGETS: $$pkg has no $$fn"; exit 1; }; done

.PHONY: fuzz
fuzz: ## Run each fuzz target for 60s.
	$(MAKE) fuzz-short FUZZTIME=60s

.PHONY: bench
bench: build $(GHZ) $(HEY) $(BENCHSTAT) ## Benchmarks (-benchmem), ghz (real vs no-op ext_authz) hey (through the stack vs the upstream alone) and the router scenario (go-sdk clients, MCP 2025-11-25 and 2026-07-28); writes docs/benchmarks.md. BENCH_BASE=REV adds the Go benchmarks of REV beside them.
	GHZ=$(GHZ) HEY=$(HEY) BENCHSTAT=$(BENCHSTAT) hack/bench.sh

.PHONY: bench-ab
bench-ab: $(BENCHSTAT) ## The hot paths' Go benchmarks beside those of BENCH_BASE=REV, interleaved (benchstat).
	BENCHSTAT=$(BENCHSTAT) hack/benchab.sh

.PHONY: image
image: ## Build the container image into bin/mcp-authz-image.tar (OCI archive; no engine or registry needed).
	CGO_ENABLED=0 GOOS=$(IMAGE_OS) GOARCH=$(IMAGE_ARCH) go build -trimpath -ldflags "-s -w $(LDFLAGS)" \
	  -o $(BIN)/$(IMAGE_OS)_$(IMAGE_ARCH)/mcp-authz ./cmd/mcp-authz
	cd hack/image && go run . -binary $(BIN)/$(IMAGE_OS)_$(IMAGE_ARCH)/mcp-authz -platform $(IMAGE_PLATFORM) \
	  -ref $(IMAGE_REPO):$(IMAGE_TAG) -version $(VERSION) -revision $$(git rev-parse HEAD) \
	  -created $(SOURCE_DATE_EPOCH) -out $(IMAGE_TAR)

.PHONY: image-test
image-test: image ## Unpack the image archive and run its entrypoint; check the Dockerfile agrees.
	cd hack/image && go vet ./... && MCP_AUTHZ_IMAGE=$(IMAGE_TAR) MCP_AUTHZ_IMAGE_REF=$(IMAGE_REPO):$(IMAGE_TAG) \
	  MCP_AUTHZ_IMAGE_VERSION=$(VERSION) go test -count=1 ./...

.PHONY: chart-lint
chart-lint: $(HELM) ## helm lint the chart in each mode (make unit runs the same in TestChartLint).
	$(HELM) lint --strict charts/mcp-authz
	$(HELM) lint --strict charts/mcp-authz --set mode=envoy
	$(HELM) lint --strict charts/mcp-authz --set mode=none,networkPolicy.enabled=false

.PHONY: manifests
manifests: ## Regenerate deepcopy functions and CRDs (pinned controller-gen).
	hack/manifests.sh

.PHONY: manifests-check
manifests-check: ## Fail if the generated files differ from what api/ generates.
	hack/manifests.sh --check

.PHONY: monitoring-check
monitoring-check: ## Check manifests/monitoring: every PromQL expression parses (Prometheus' parser) and selects only what the binary exports.
	cd hack/promcheck && go vet ./... && go test -count=1 ./... && go build -o $(PROMCHECK) .
	go build -o $(BIN)/mcp-authz ./cmd/mcp-authz
	$(BIN)/mcp-authz metrics --config dev/mcp-authz.yaml >$(BIN)/metrics.txt 2>$(BIN)/metrics.log || { cat $(BIN)/metrics.log; exit 1; }
	$(PROMCHECK) -metrics $(BIN)/metrics.txt manifests/monitoring

##@ Tools (pinned, cached in $(CACHE))

.PHONY: envtest
envtest: ## Build once and cache kube-apiserver, kubectl and etcd for envtest, and Istio's CRDs.
	hack/envtest.sh >/dev/null


.PHONY: tools
tools: $(GOLANGCI) $(HELM) $(GHZ) $(HEY) $(GRPCURL) $(BENCHSTAT) npm $(INSPECTOR) $(TSSDK)/.installed $(CONFORMANCE_2025_DIR)/$(CONFORMANCE_PKG) $(CONFORMANCE_2026_DIR)/$(CONFORMANCE_PKG) envtest ## Install every pinned tool.

$(GOLANGCI):
	cd hack/golangci && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(HELM):
	cd hack/helm && go build -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" \
	  -o $@.tmp helm.sh/helm/v3/cmd/helm && mv -f $@.tmp $@

$(GHZ):
	cd hack/ghz && go build -o $@ github.com/bojand/ghz/cmd/ghz

$(HEY):
	cd hack/hey && go build -o $@ github.com/rakyll/hey

$(GRPCURL):
	cd hack/grpcurl && go build -o $@ github.com/fullstorydev/grpcurl/cmd/grpcurl

$(BENCHSTAT):
	cd hack/benchstat && go build -o $@ golang.org/x/perf/cmd/benchstat

.PHONY: npm
npm: $(EVERYTHING) ## Install the real MCP servers used by tests (npm, pinned).

$(EVERYTHING):
	mkdir -p $(NPM_DIR)
	cd $(NPM_DIR) && npm install --no-audit --no-fund --loglevel=error \
	  @modelcontextprotocol/server-everything@$(EVERYTHING_VERSION) kubernetes-mcp-server@$(K8S_MCP_VERSION)
	test -f $@

$(INSPECTOR):
	mkdir -p $(INSPECTOR_DIR)
	cd $(INSPECTOR_DIR) && npm install --no-audit --no-fund --loglevel=error \
	  node@$(NODE22_VERSION) @modelcontextprotocol/inspector@$(INSPECTOR_VERSION)
	test -x $@

# A marker written after both packages installed: a folder left by an
# interrupted install is installed again.
$(TSSDK)/.installed:
	mkdir -p $(TSSDK_DIR)
	cd $(TSSDK_DIR) && npm install --no-audit --no-fund --loglevel=error \
	  @modelcontextprotocol/sdk@$(TSSDK_VERSION) @modelcontextprotocol/client@$(TSCLIENT_VERSION)
	test -f $(TSSDK)/@modelcontextprotocol/sdk/package.json && test -f $(TSSDK)/@modelcontextprotocol/client/package.json
	touch $@

# go build of a package of a dependency module: go.mod pins its version.
$(EVERYTHING_SERVER): go.mod go.sum
	go build -o $@ github.com/modelcontextprotocol/go-sdk/conformance/everything-server

$(CACHE)/conformance-%/$(CONFORMANCE_PKG): $(INSPECTOR)
	mkdir -p $(CACHE)/conformance-$*
	cd $(CACHE)/conformance-$* && PATH=$(dir $(NODE22)):$$PATH npm install --no-audit --no-fund --loglevel=error \
	  @modelcontextprotocol/conformance@$*
	test -f $@

.PHONY: clean
clean: ## Remove build outputs (the tool cache stays).
	rm -rf $(BIN)
