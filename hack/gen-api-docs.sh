#!/usr/bin/env bash
# Regenerates docs/reference.md from the doc comments and markers of api/v1alpha1
# (hack/docsgen, go/parser only; deterministic).
#
#   hack/gen-api-docs.sh           rewrite docs/reference.md
#   hack/gen-api-docs.sh --check   fail if docs/reference.md is stale
# (hack/docsgen's own test runs the same check in `go test ./...`.)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=docs/reference.md
if [[ ${1:-} == --check ]]; then
  tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
  go run ./hack/docsgen -api api/v1alpha1 -o "$tmp"
  if ! diff -u "$OUT" "$tmp"; then
    echo "gen-api-docs: $OUT is stale; run hack/gen-api-docs.sh" >&2
    exit 1
  fi
  exit 0
fi
mkdir -p docs
go run ./hack/docsgen -api api/v1alpha1 -o "$OUT"
