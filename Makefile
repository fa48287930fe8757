# cipherscale-operator: build, generate, lint and test.
# `make help` lists the targets. Nothing beyond Go, make, git and a shell is assumed: every tool
# is built into ./bin at a pinned version the first time a target needs it.

# Version stamped into the binaries.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Tool versions.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
HELM_VERSION ?= v3.19.0
KUBE_SCORE_VERSION ?= v1.20.0
ACTIONLINT_VERSION ?= v1.7.12
PROMTOOL_VERSION ?= v0.316.0

# Where tools and binaries go.
LOCALBIN ?= $(abspath bin)
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
KUBE_SCORE ?= $(LOCALBIN)/kube-score-$(KUBE_SCORE_VERSION)
ACTIONLINT ?= $(LOCALBIN)/actionlint-$(ACTIONLINT_VERSION)
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMTOOL_VERSION)

# envtest binaries (kube-apiserver, etcd), built from source by hack/envtest-assets.sh; the
# script records what it built in .version and is a no-op when that matches.
ENVTEST_ASSETS_DIR ?= $(LOCALBIN)/k8s
ENVTEST_STAMP := $(ENVTEST_ASSETS_DIR)/.version

# Where the chart keeps its copy of the CRDs, if the chart exists.
CHART_CRDS_DIR ?= charts/cipherscale-operator/crds

# go test: no cache, a timeout generous enough for a cold 2-core machine. The packages whose code
# runs inside the test binary (unit, envtest, chart, GitOps) run with the race detector; the
# black-box suites drive built binaries as processes (the manager, the simulator, the image), so
# the race detector would only instrument their harness and double their build: they run without.
GO_TEST_TIMEOUT ?= 30m
GO_TEST_FLAGS ?= -race -count=1 -timeout $(GO_TEST_TIMEOUT)
GO_TEST_BLACKBOX_FLAGS ?= -count=1 -timeout $(GO_TEST_TIMEOUT)
GO_TEST_BLACKBOX_PKGS ?= ./test/e2e/... ./test/reliability/... ./test/onboarding/... ./test/image/...
GO_TEST_PKGS ?= $(shell go list ./... | grep -v -e /test/e2e -e /test/reliability -e /test/onboarding -e /test/image)

# `make run` runs the manager against the current kubeconfig. Its tenants are objects: create
# ClusterCipherscaleTenant "default" and its Secret (config/samples/iam_v1alpha1_default_tenant.yaml
# says how), with spec.url the simulator on 127.0.0.1:8089, started in another terminal with
#   go run ./hack/cipherscale-sim --listen 127.0.0.1:8089 --api-key dev --demo-seed
# or a real tenant. `make demo` does all of it.
RUN_ARGS ?= --health-probe-bind-address=:8081 --metrics-bind-address=0 --zap-devel

GOBUILD_LDFLAGS := -s -w -X main.version=$(VERSION)

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the Go types and markers (and copy the CRDs into the chart).
	$(CONTROLLER_GEN) rbac:roleName=cipherscale-operator crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	@if [ -d "$(CHART_CRDS_DIR)" ]; then \
		echo ">> Copying CRDs into $(CHART_CRDS_DIR)"; \
		cp config/crd/bases/*.yaml "$(CHART_CRDS_DIR)/"; \
	fi

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify
verify: manifests generate ## Fail when generated files (CRDs, RBAC, deepcopy, chart CRDs) differ from what is committed, or Go code is not formatted.
	@stale=0; \
	if ! git diff --quiet; then git --no-pager diff --stat; { git --no-pager diff | head -n 200; } || true; stale=1; fi; \
	untracked="$$(git ls-files --others --exclude-standard -- config api charts)"; \
	if [ -n "$$untracked" ]; then echo "Untracked files:"; echo "$$untracked" | sed 's/^/  /'; stale=1; fi; \
	if [ "$$stale" -ne 0 ]; then \
		echo "generated files are stale: run make manifests generate and commit"; \
		exit 1; \
	fi; \
	echo ">> generated files are up to date"
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted" | sed 's/^/  /'; echo "run make fmt and commit"; exit 1; fi; \
	echo ">> Go code is formatted"

.PHONY: lint
lint: $(GOLANGCI_LINT) $(ACTIONLINT) ## Run golangci-lint (configuration in .golangci.yml) and actionlint on .github/workflows.
	$(GOLANGCI_LINT) run
	$(ACTIONLINT)

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and apply the fixes it can.
	$(GOLANGCI_LINT) run --fix

# config/manager runs the image `make image` builds (a fixed tag, pull policy Always): every
# kube-score check applies.
KUBE_SCORE_FLAGS ?=

.PHONY: score
score: $(KUBE_SCORE) ## Score the manager's Deployment, Service and NetworkPolicy with kube-score.
	$(KUBE_SCORE) score $(KUBE_SCORE_FLAGS) config/manager/manager.yaml config/default/metrics_service.yaml config/network-policy/*.yaml

.PHONY: test
test: manifests generate fmt vet envtest-assets $(HELM) $(KUBE_SCORE) test-rules ## Run all tests: unit, envtest, chart and GitOps with the race detector; then end to end, reliability, onboarding and image (needs root) on the built binaries.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS_DIR)" go test $(GO_TEST_FLAGS) $(GO_TEST_PKGS)
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS_DIR)" go test $(GO_TEST_BLACKBOX_FLAGS) $(GO_TEST_BLACKBOX_PKGS)

CHART_FILES_DIR ?= charts/cipherscale-operator/files

.PHONY: test-rules
test-rules: $(PROMTOOL) ## Check and unit-test the chart's alert rules (test/rules) with promtool, and parse every dashboard query.
	$(PROMTOOL) check rules $(CHART_FILES_DIR)/alerts.yaml
	$(PROMTOOL) test rules test/rules/*.test.yaml
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	go run ./hack/dashboard-rules $(CHART_FILES_DIR)/dashboard.json > "$$tmp/dashboard-rules.yaml"; \
	echo ">> Parsing the dashboard's queries"; \
	$(PROMTOOL) check rules "$$tmp/dashboard-rules.yaml"

.PHONY: test-crd
test-crd: manifests envtest-assets ## Run only the CRD validation suite against a real kube-apiserver.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS_DIR)" go test $(GO_TEST_FLAGS) ./test/crd/...

.PHONY: envtest-assets
envtest-assets: $(ENVTEST_STAMP) ## Build kube-apiserver and etcd for envtest into bin/k8s (once; ~10 minutes cold).

$(ENVTEST_STAMP): hack/envtest-assets.sh
	hack/envtest-assets.sh "$(ENVTEST_ASSETS_DIR)"
	@touch "$@"

##@ Build

.PHONY: build
build: ## Build the manager (bin/manager), the simulator (bin/cipherscale-sim) and the kubectl plugin (bin/kubectl-cipherscale).
	CGO_ENABLED=0 go build -trimpath -ldflags "$(GOBUILD_LDFLAGS)" -o $(LOCALBIN)/manager .
	CGO_ENABLED=0 go build -trimpath -ldflags "$(GOBUILD_LDFLAGS)" -o $(LOCALBIN)/cipherscale-sim ./hack/cipherscale-sim
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(LOCALBIN)/kubectl-cipherscale ./cmd/kubectl-cipherscale

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the current kubeconfig (flags in RUN_ARGS; tenants are objects).
	go run -ldflags "-X main.version=$(VERSION)" . $(RUN_ARGS)

.PHONY: clean
clean: ## Remove the built binaries (keeps the tools and the envtest binaries; `make clean-all` removes bin/).
	rm -f $(LOCALBIN)/manager $(LOCALBIN)/cipherscale-sim $(LOCALBIN)/kubectl-cipherscale

.PHONY: clean-all
clean-all: ## Remove bin/ entirely, tools and envtest binaries included.
	chmod -R u+w $(LOCALBIN) 2>/dev/null || true
	rm -rf $(LOCALBIN)

##@ Tools

.PHONY: tools
tools: $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(HELM) $(KUBE_SCORE) $(PROMTOOL) ## Install every pinned tool into bin/.

.PHONY: controller-gen golangci-lint helm kube-score promtool
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
promtool: $(PROMTOOL) ## Install Prometheus' promtool into bin/ (rule tests).
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint into bin/.
helm: $(HELM) ## Install helm into bin/.
kube-score: $(KUBE_SCORE) ## Install kube-score into bin/.

$(CONTROLLER_GEN):
	$(call go-install-tool,$@,sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(GOLANGCI_LINT):
	$(call go-install-tool,$@,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

$(HELM):
	$(call go-install-tool,$@,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

$(KUBE_SCORE):
	$(call go-install-tool,$@,github.com/zegl/kube-score/cmd/kube-score,$(KUBE_SCORE_VERSION))

$(ACTIONLINT):
	$(call go-install-tool,$@,github.com/rhysd/actionlint/cmd/actionlint,$(ACTIONLINT_VERSION))

$(PROMTOOL):
	$(call go-install-tool,$@,github.com/prometheus/prometheus/cmd/promtool,$(PROMTOOL_VERSION))

# go-install-tool installs package $(2) at version $(3) as the file $(1) (bin/NAME-VERSION) and
# points bin/NAME at it. It builds in a scratch GOBIN so a half-built tool never sits in bin/.
define go-install-tool
@set -e; \
mkdir -p "$(LOCALBIN)"; \
tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
echo ">> Installing $(2)@$(3)"; \
GOBIN="$$tmp" go install "$(2)@$(3)"; \
mv "$$tmp/$(notdir $(2))" "$(1)"; \
ln -sf "$(notdir $(1))" "$(LOCALBIN)/$(notdir $(2))"
endef


##@ Demo, end to end, benchmark

.PHONY: demo
demo: envtest-assets build ## Run the operator end to end on this machine (DEMO_EXIT=1 exits after the check).
	go run ./hack/demo

.PHONY: e2e
e2e: envtest-assets ## Run only the end-to-end test of the built manager binary.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS_DIR)" go test $(GO_TEST_BLACKBOX_FLAGS) ./test/e2e/...

# Benchmark parameters: make bench BENCH_N=10000. The manager and ClusterCipherscaleTenant/default
# run at their shipped defaults except the tenant's requestsPerSecond (the simulator's limit) and
# resyncInterval; BENCH_ARGS adds flags of hack/bench, such
# as -max-concurrent-reconciles=128 or -manager-env=GOMEMLIMIT=100MiB. Reports: docs/bench/.
# The large stages are off by default (0) and run before the mixed workload, each on a control
# plane and manager of its own: make bench BENCH_N=0 BENCH_FLEET_TENANTS=100 (a fleet of 100
# tenants of BENCH_FLEET_USERS users), make bench BENCH_N=0 BENCH_LARGE_USERS=100000 (a tenant of
# 100,000 users, BENCH_LARGE_DECLARED of them declared). BENCH_N=0 skips the mixed workload.
BENCH_N ?= 2000
BENCH_LATENCY ?= 20ms
BENCH_LIMIT ?= 50
BENCH_RESYNC ?= 20s
BENCH_FLEET_TENANTS ?= 0
BENCH_FLEET_USERS ?= 200
BENCH_LARGE_USERS ?= 0
BENCH_LARGE_DECLARED ?= 20000
BENCH_ARGS ?=
.PHONY: bench
bench: envtest-assets build ## Mixed workload (adopted, new, memberships): calls, time, 429s, steady state, memory, latency; report in bin/bench/report.md.
	go run ./hack/bench -n $(BENCH_N) -latency $(BENCH_LATENCY) -limit $(BENCH_LIMIT) -resync $(BENCH_RESYNC) \
		-fleet-tenants $(BENCH_FLEET_TENANTS) -fleet-users $(BENCH_FLEET_USERS) \
		-large-users $(BENCH_LARGE_USERS) -large-declared $(BENCH_LARGE_DECLARED) $(BENCH_ARGS)

# Each fuzz target runs on top of its committed corpus for a number of executions (its third
# field: about 5 s each on two cores), not for a time: with a time, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure when the time runs out while a worker is
# busy (go.dev/issue/75804, fixed in Go 1.27), and a loaded CI machine hits it. FUZZ_TIME, when
# set (such as FUZZ_TIME=1m), replaces every target's budget.
FUZZ_TIME ?=
FUZZ_TARGETS ?= ./internal/plan:FuzzDiff:50000x ./internal/plan:FuzzDecidePair:50000x ./internal/plan:FuzzPlanUser:30000x \
	./internal/cipherscale:FuzzDecodeUser:50000x ./internal/cipherscale:FuzzDecodePage:100000x \
	./internal/cipherscale:FuzzDecodeRoleList:50000x ./internal/cipherscale:FuzzClientResponse:3000x
.PHONY: fuzz
fuzz: ## Run every fuzz target briefly (its budget of executions, or FUZZ_TIME each).
	@for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; rest="$${t#*:}"; name="$${rest%%:*}"; budget="$${rest#*:}"; \
		if [ -n "$(FUZZ_TIME)" ]; then budget="$(FUZZ_TIME)"; fi; \
		echo ">> $$name ($$pkg, $$budget)"; \
		go test -run='^$$' -fuzz="^$$name\$$" -fuzztime="$$budget" "$$pkg" || exit 1; \
	done

##@ Image

# The image that the chart (image.repository, appVersion) and config/manager reference; `make
# image` builds exactly it. IMAGE_TAG empty means the chart's appVersion.
IMAGE_REPOSITORY ?= ghcr.io/cipherscale/cipherscale-operator
IMAGE_TAG ?=
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_TAR ?= $(LOCALBIN)/image/cipherscale-operator.oci.tar

.PHONY: image
image: ## Build the manager's OCI image index (amd64, arm64) without a daemon into bin/image/ (reproducible).
	go run ./hack/image -out "$(IMAGE_TAR)" -repository "$(IMAGE_REPOSITORY)" -tag "$(IMAGE_TAG)" \
		-version "$(VERSION)" -platforms "$(IMAGE_PLATFORMS)"

.PHONY: image-test
image-test: image envtest-assets $(HELM) ## Build the image, then run it as the chart's Deployment runs it (needs root: namespaces, setuid).
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS_DIR)" IMAGE_TAR="$(IMAGE_TAR)" go test $(GO_TEST_BLACKBOX_FLAGS) ./test/image/...

##@ Chart

.PHONY: helm-lint
helm-lint: $(HELM) ## Lint the Helm chart.
	$(HELM) lint --strict charts/cipherscale-operator --set apiKey.existingSecret=x

.PHONY: score-chart
score-chart: $(HELM) $(KUBE_SCORE) ## Score the rendered chart with kube-score.
	$(HELM) template cso charts/cipherscale-operator -n cipherscale-system --set apiKey.existingSecret=x | $(KUBE_SCORE) score -
