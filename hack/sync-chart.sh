#!/usr/bin/env bash
# Copies the generated CRDs and RBAC rules into the Helm chart, so the chart never
# drifts from the API types (make verify checks this).
#
# CRDs go to files/crds/, NOT to the chart's crds/ directory: Helm installs crds/ once
# and never upgrades or deletes it, so an API change would never reach a cluster through
# `helm upgrade`. templates/crds.yaml renders files/crds/ instead (values crds.install,
# crds.keep), which upgrades CRDs with the chart and keeps them on uninstall by default.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$ROOT/charts/secretsync
rm -rf "$CHART/crds"
mkdir -p "$CHART/files/crds"
rm -f "$CHART"/files/crds/*.yaml
cp "$ROOT"/config/crd/bases/*.yaml "$CHART/files/crds/"
# The chart templates the ClusterRole's metadata itself and includes these rules.
if [[ -f $ROOT/config/rbac/role.yaml ]]; then
  sed -n '/^rules:/,$p' "$ROOT/config/rbac/role.yaml" >"$CHART/files/rbac-rules.yaml"
fi
