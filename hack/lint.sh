#!/usr/bin/env bash
# lint.sh — the linters `make lint` runs:
#   1. golangci-lint with .golangci.yml on the whole module;
#   2. the Kubernetes API conventions on api/: kube-api-linter (sigs.k8s.io/kube-api-linter)
#      as a golangci-lint module plugin, with .golangci-kal.yml.
# Both binaries are built from the Go module proxy (no release downloads work on these
# machines) into a cache OUTSIDE the checkout, keyed by version, and reused: the first
# run takes minutes, the next ones none. Neither is in go.mod.
#
#   hack/lint.sh                 lint (builds what is missing)
#   hack/lint.sh --install       only build what is missing
#   LINT_ARGS=--fix hack/lint.sh pass extra arguments to both runs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SECRETSYNC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync/tools}
GOLANGCI_VERSION=v2.15.0
# kube-api-linter has no tags; this is the newest commit the proxy serves (2026-07-16).
KAL_VERSION=v0.0.0-20260716143926-092fe0c72997

export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=${GOTOOLCHAIN:-local}
log() { printf '[lint] %s\n' "$*" >&2; }

GOLANGCI=$CACHE/golangci-lint-$GOLANGCI_VERSION/golangci-lint
KAL=$CACHE/golangci-lint-kal-$GOLANGCI_VERSION-$KAL_VERSION/golangci-lint-kal

install_golangci() {
  [[ -x $GOLANGCI ]] && return
  log "golangci-lint $GOLANGCI_VERSION: building into $(dirname "$GOLANGCI") (once)"
  # Outside the checkout, so the project's go.mod plays no part.
  (cd "$CACHE" && GOBIN=$(dirname "$GOLANGCI") go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_VERSION")
}

# kube-api-linter is a golangci-lint "module plugin": `golangci-lint custom` would
# clone golangci-lint with git, which these machines cannot. The same binary is a
# main package that runs golangci-lint's commands and imports the plugin, built in a
# throw-away module that pins both versions.
install_kal() {
  [[ -x $KAL ]] && return
  local dir
  dir=$(dirname "$KAL")/src
  log "kube-api-linter $KAL_VERSION (golangci-lint $GOLANGCI_VERSION): building into $(dirname "$KAL") (once)"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module secretsync.local/golangci-lint-kal

go 1.24

require (
	github.com/golangci/golangci-lint/v2 $GOLANGCI_VERSION
	sigs.k8s.io/kube-api-linter $KAL_VERSION
)
MOD
  cat >"$dir/main.go" <<'SRC'
// Command golangci-lint-kal is golangci-lint with the kube-api-linter module plugin.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/golangci/golangci-lint/v2/pkg/commands"
	"github.com/golangci/golangci-lint/v2/pkg/exitcodes"
	_ "sigs.k8s.io/kube-api-linter" // registers the "kubeapilinter" module plugin
)

var version = "dev" // set by hack/lint.sh

func main() {
	info := commands.BuildInfo{Version: version, GoVersion: runtime.Version(), Commit: "(kube-api-linter module plugin)", Date: "(unknown)"}
	if err := commands.Execute(info); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "Failed executing command with error: %v\n", err)
		os.Exit(exitcodes.Failure)
	}
}
SRC
  (cd "$dir" && go mod tidy && go build -ldflags "-X main.version=$GOLANGCI_VERSION+kal-$KAL_VERSION" -o "$KAL" .)
}

mkdir -p "$CACHE"
install_golangci
install_kal
[[ ${1:-} == --install ]] && exit 0

cd "$ROOT"
status=0
log "golangci-lint ./..."
# shellcheck disable=SC2086 # LINT_ARGS is a list of flags
"$GOLANGCI" run ${LINT_ARGS:-} ./... || status=1
log "kube-api-linter ./api/..."
# shellcheck disable=SC2086
"$KAL" run -c .golangci-kal.yml ${LINT_ARGS:-} ./api/... || status=1
exit $status
