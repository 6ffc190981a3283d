#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one at a time, FUZZTIME each
# (default 3s), and stops at the first failure. Targets are found by grepping each
# package's test files for `func FuzzXxx(... *testing.F)`, so a new target is picked
# up without editing this script. `go test -fuzz` takes one package and one target,
# hence one run per target. A failing input is saved by go test under the package's
# testdata/fuzz/<FuzzName>/; commit it as a regression seed once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="${GOFLAGS:--buildvcs=false}"
# Fuzz targets are pure; never start the integration environment from here.
export SECRETSYNC_SKIP_INTEGRATION=1
FUZZTIME="${FUZZTIME:-3s}"

# One line per package: import path, then its test files (tags and nested modules
# are handled by go list; -e keeps listing when a package does not build yet).
targets=()
while read -r pkg files; do
	[ -n "$files" ] || continue
	# shellcheck disable=SC2086 # files is a space-separated list of paths
	for name in $(grep -hoE '^func Fuzz[A-Za-z0-9_]*\([^)]*\*testing\.F\)' $files |
		sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' | sort -u); do
		targets+=("$pkg $name")
	done
done < <(go list -e -f '{{.ImportPath}}{{$d := .Dir}}{{range .TestGoFiles}} {{$d}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$d}}/{{.}}{{end}}' ./...)

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi

# inputs lists the failing inputs go test has saved for a target.
inputs() { ls "$1/testdata/fuzz/$2" 2>/dev/null || true; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
passed=0
start=$SECONDS
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "--- fuzz $name ($pkg, $FUZZTIME)"
	dir=$(go list -f '{{.Dir}}' "$pkg")
	before=$(inputs "$dir" "$name")
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1 | tee "$out"; then
		# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
		# exceeded" when -fuzztime ends while a worker is busy (golang/go#75804, fixed
		# in Go 1.27): no input failed and none is saved. Anything else is a failure.
		if [ "$(inputs "$dir" "$name")" = "$before" ] &&
			grep -qx -- "--- FAIL: $name ([0-9.]*s)" "$out" &&
			[ "$(grep -c -- '--- FAIL' "$out")" = 1 ] &&
			grep -A1 -- "--- FAIL: $name" "$out" | tail -1 | grep -qx '[[:space:]]*context deadline exceeded'; then
			echo "fuzz: $name stopped by Go's fuzz-time deadline race (no failing input, none saved): counted as run"
		else
			echo "fuzz: FAIL $name in $pkg after $passed of ${#targets[@]} targets passed (failing input under its testdata/fuzz/$name/)"
			exit 1
		fi
	fi
	passed=$((passed + 1))
done
echo "fuzz: ok, ${#targets[@]} targets, $FUZZTIME each, $((SECONDS - start))s: $(printf '%s\n' "${targets[@]}" | awk '{print $2}' | paste -sd' ')"
