#!/usr/bin/env bash
# Fails when a Go file is not gofmt'ed; regenerates into a temporary copy of the
# checkout and fails if anything differs; checks every CRD stays under the 256 KiB
# client-side-apply annotation limit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
status=0
# gofmt first: it needs no build and is the most common slip.
unformatted=$(cd "$ROOT" && git ls-files -co --exclude-standard '*.go' | xargs gofmt -l)
if [[ -n $unformatted ]]; then
  echo "verify: gofmt needed (run 'gofmt -w' on these):" >&2
  echo "$unformatted" >&2
  status=1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
git -C "$ROOT" ls-files -co --exclude-standard -z | (cd "$ROOT" && xargs -0 cp --parents -t "$TMP")
make -s -C "$TMP" generate >/dev/null
for d in api config charts docs; do
  if ! diff -r "$ROOT/$d" "$TMP/$d" >/dev/null; then
    echo "verify: generated files under $d/ are stale; run 'make generate'" >&2
    diff -r "$ROOT/$d" "$TMP/$d" | head -40 >&2
    status=1
  fi
done
for f in "$ROOT"/config/crd/bases/*.yaml; do
  size=$(wc -c <"$f")
  if (( size >= 262144 )); then
    echo "verify: $f is $size bytes, over the 256 KiB client-side apply limit" >&2
    status=1
  fi
done
[[ $status == 0 ]] && echo "verify: gofmt clean; generated files up to date; CRDs under 256 KiB"
exit $status
