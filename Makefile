# The verbs people type. Every target works on a fresh machine: `make tools` builds
# what is missing (cached outside the checkout) and the others call it when needed.
SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

ROOT := $(CURDIR)
BIN := $(ROOT)/bin
export KUBEBUILDER_ASSETS ?= $(BIN)/k8s
export PATH := $(BIN):$(PATH)
CONTROLLER_GEN := go tool controller-gen
CHART := charts/secretsync

.PHONY: all tools generate verify build test test-unit test-integration lint demo bench soak clean

all: build

tools: ## build kube-apiserver, etcd, helm, bao (cached, idempotent)
	hack/tools.sh

generate: ## deepcopy, CRDs, RBAC; copies into the chart
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=secretsync-manager paths=./controllers/... output:rbac:dir=config/rbac
	hack/sync-chart.sh
	hack/gen-api-docs.sh

verify: ## fails when a Go file is not gofmt'ed, anything generated is stale or a CRD is too large
	hack/verify.sh

build: ## the operator binary and the kubectl plugin (bin/kubectl-secretsync)
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/secretsync .
	CGO_ENABLED=0 go build -trimpath -o $(BIN)/kubectl-secretsync ./cmd/kubectl-secretsync

lint: ## golangci-lint (.golangci.yml) and kube-api-linter on api/ (.golangci-kal.yml); builds both once, cached outside the checkout
	hack/lint.sh

test: tools lint ## the full suite: unit + envtest/OpenBao/PostgreSQL/awsemu integration + demo
	go test -count=1 -timeout 40m -p 1 ./...
	FUZZTIME=3s hack/fuzz.sh
	DEMO_EXIT=1 hack/demo.sh

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## every Go fuzz target in the module, one at a time, FUZZTIME each (default 30s)
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

test-unit: ## fast tests only (integration tests skip, loudly)
	SECRETSYNC_SKIP_INTEGRATION=1 go test ./...

demo: tools build ## local control plane + OpenBao + PostgreSQL + AWS emulator + the operator
	hack/demo.sh

bench: tools build ## scale benchmark (BENCH_N, default 1000)
	go run ./test/bench

SOAK_DURATION ?= 10m
SOAK_SEED ?= $(shell date +%s)
soak: tools ## fault soak: 2 leader-elected replicas, faults mixed, invariants every second (SOAK_DURATION, SOAK_SEED, SOAK_ES; docs/soak.md)
	SOAK_DURATION=$(SOAK_DURATION) SOAK_SEED=$(SOAK_SEED) go test -count=1 -timeout 0 -v -run '^TestSoak$$' ./test/soak/

clean:
	rm -rf $(BIN)
