#!/usr/bin/env bash
# demo.sh — secretsync end to end on one machine, no cloud and no cluster needed (make demo).
#
# Starts, on 127.0.0.1 and free ports: a Kubernetes control plane (kube-apiserver + etcd
# with the CRDs, hack/demo-controlplane), PostgreSQL, an OpenBao dev server with KV v2 and
# the database secrets engine, and the AWS emulator (test/awsemu). Seeds them, runs
# bin/secretsync against the control plane, applies examples/ (ports rewritten), waits
# until every store and ExternalSecret is Ready, and prints them with the key NAMES of
# each synced Secret (never values).
#
#   make demo                  stay up until Ctrl-C, printing how to point kubectl at it
#   DEMO_EXIT=1 hack/demo.sh   exit when done: 0 if everything is Ready, 1 otherwise
#
# Environment: DEMO_TIMEOUT (seconds to wait for Ready, default 120), DEMO_KEEP=1 (keep the
# run directory with logs), DEMO_DIR (run directory, default a new temporary one),
# DEMO_OPERATOR=0 (start and seed everything but do not run the operator: run it yourself,
# e.g. in a debugger, with the printed KUBECONFIG; with DEMO_EXIT=1 this exits after
# applying the examples, which checks the environment alone).
# Every process started here is stopped on exit, by PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
DEMO_EXIT=${DEMO_EXIT:-0}
DEMO_TIMEOUT=${DEMO_TIMEOUT:-120}
DEMO_KEEP=${DEMO_KEEP:-0}
DEMO_OPERATOR=${DEMO_OPERATOR:-1}
RUN=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/secretsync-demo.XXXXXX")}
mkdir -p "$RUN/bin" "$RUN/examples"
# PostgreSQL runs as the postgres user, which must be able to reach its data directory.
chmod 711 "$RUN"

OPERATOR_NS=secretsync-system
AWS_ACCESS_KEY=AKIADEMODEMODEMODEMO           # the value in examples/aws-secretsmanager.yaml
AWS_SECRET_KEY=demo-secret-access-key
PG_ADMIN=vaultadmin
PG_ADMIN_PASSWORD=demo-admin-$RANDOM$RANDOM

log() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ cleanup
PIDS=()        # background processes, stopped in reverse order
NAMES=()
PG_STARTED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    local pid=${PIDS[$i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { log "${NAMES[$i]} (pid $pid) did not stop; killing it"; kill -KILL "$pid" 2>/dev/null; }
      wait "$pid" 2>/dev/null
    fi
  done
  if [[ $PG_STARTED == 1 ]]; then
    pg_run "$PG_BIN/pg_ctl" -D "$RUN/pg/data" -m fast -w stop >/dev/null 2>&1
  fi
  # Keep the logs after a failure (not after Ctrl-C or SIGTERM) or when asked to.
  if [[ ($rc != 0 && $rc != 130 && $rc != 143) || $DEMO_KEEP == 1 ]]; then
    log "logs kept in $RUN"
  else
    rm -rf "$RUN"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOG CMD...: run CMD in the background, remember its PID for cleanup.
start() {
  local name=$1 logf=$2; shift 2
  "$@" >"$logf" 2>&1 &
  PIDS+=($!); NAMES+=("$name")
  log "$name started (pid $!, log $logf)"
}

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what not ready after ${secs}s"
    local i
    for i in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$i]}" 2>/dev/null || die "${NAMES[$i]} exited early; see the logs in $RUN"
    done
    sleep 0.2
  done
}

# free_port: a TCP port nothing listens on at 127.0.0.1.
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "; echo "$p"; return 0
    fi
  done
  die "no free port found"
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# ------------------------------------------------------------------ tools
KUBECTL=$ROOT/bin/k8s/kubectl
[[ -x $KUBECTL ]] || KUBECTL=$(command -v kubectl) || die "kubectl not found (make tools)"
BAO=$ROOT/bin/bao
[[ -x $BAO ]] || die "bin/bao not found: run 'make tools'"
for b in kube-apiserver etcd; do
  [[ -x $ROOT/bin/k8s/$b ]] || die "bin/k8s/$b not found: run 'make tools'"
done
command -v curl >/dev/null || die "curl not found"

PG_BIN=""
for cand in "$(dirname "$(readlink -f "$(command -v postgres 2>/dev/null || echo /nonexistent)")")" \
            "$ROOT/bin/pg" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [[ -x $cand/initdb && -x $cand/pg_ctl ]]; then PG_BIN=$(readlink -f "$cand/initdb"); PG_BIN=${PG_BIN%/initdb}; break; fi
done
[[ -n $PG_BIN ]] || die "PostgreSQL (initdb, pg_ctl) not found: run 'make tools'"
# PostgreSQL refuses to run as root: as root, run it as the postgres user.
if [[ $EUID == 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user for PostgreSQL (make tools creates it)"
  pg_run() { runuser -u postgres -- "$@"; }
else
  pg_run() { "$@"; }
fi

log "building bin/secretsync, the AWS emulator and the demo control plane"
if [[ $DEMO_OPERATOR == 1 ]]; then
  make -s build >/dev/null || die "make build failed"
  [[ -x $ROOT/bin/secretsync ]] || die "bin/secretsync was not built"
fi
go build -o "$RUN/bin/awsemu" ./test/awsemu/cmd/awsemu
go build -o "$RUN/bin/demo-controlplane" ./hack/demo-controlplane

# ------------------------------------------------------------------ control plane
export KUBECONFIG=$RUN/kubeconfig
start controlplane "$RUN/controlplane.log" \
  "$RUN/bin/demo-controlplane" -write-kubeconfig "$KUBECONFIG" -assets "$ROOT/bin/k8s" -crds "$ROOT/config/crd/bases"
wait_for "control plane" 90 test -s "$KUBECONFIG"
wait_for "kube-apiserver" 30 "$KUBECTL" get --raw /readyz
k() { "$KUBECTL" "$@"; }

# ------------------------------------------------------------------ PostgreSQL
PG_PORT=$(free_port)
mkdir -p "$RUN/pg"
echo "$PG_ADMIN_PASSWORD" >"$RUN/pg/pw"
[[ $EUID == 0 ]] && chown -R postgres "$RUN/pg"
pg_run "$PG_BIN/initdb" -D "$RUN/pg/data" -U "$PG_ADMIN" --pwfile="$RUN/pg/pw" \
  --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$RUN/pg/initdb.log" 2>&1 || die "initdb failed; see $RUN/pg/initdb.log"
rm -f "$RUN/pg/pw"
PG_STARTED=1
pg_run "$PG_BIN/pg_ctl" -D "$RUN/pg/data" -l "$RUN/pg/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $RUN/pg" start >/dev/null || die "PostgreSQL did not start; see $RUN/pg/server.log"
log "PostgreSQL on 127.0.0.1:$PG_PORT"

# ------------------------------------------------------------------ OpenBao
BAO_PORT=$(free_port)
BAO_ADDR=http://127.0.0.1:$BAO_PORT
mkdir -p "$RUN/bao-home"
start openbao "$RUN/openbao.log" env HOME="$RUN/bao-home" "$BAO" server -dev -dev-root-token-id=root \
  -dev-listen-address="127.0.0.1:$BAO_PORT" -dev-no-store-token
wait_for OpenBao 30 http_ok "$BAO_ADDR/v1/sys/health"

# bao_api METHOD PATH [JSON]: the HTTP API with the dev root token.
bao_api() {
  curl -fsS -X "$1" -H "X-Vault-Token: root" ${3:+-H "Content-Type: application/json" -d "$3"} \
    "$BAO_ADDR/v1/$2" >/dev/null || die "OpenBao: $1 $2 failed"
}
# KV v2 at secret/ (the dev server mounts it): the values examples/vault-kv.yaml and
# examples/clustersecretstore.yaml read.
bao_api POST secret/data/demo/app '{"data": {"api-key": "demo-api-key-0123", "region": "eu"}}'
bao_api POST secret/data/demo/config '{"data": {"feature-x": "on", "max-conns": 20}}'
bao_api POST secret/data/shared/config '{"data": {"smtp-host": "mail.internal", "smtp-port": "25"}}'
# Database engine: role "readonly" issues short-lived PostgreSQL users.
bao_api POST sys/mounts/database '{"type": "database"}'
bao_api POST database/config/demo "{\"plugin_name\": \"postgresql-database-plugin\",
  \"connection_url\": \"postgresql://{{username}}:{{password}}@127.0.0.1:$PG_PORT/postgres?sslmode=disable\",
  \"username\": \"$PG_ADMIN\", \"password\": \"$PG_ADMIN_PASSWORD\", \"allowed_roles\": \"readonly\"}"
bao_api POST database/roles/readonly '{"db_name": "demo", "default_ttl": "1h", "max_ttl": "24h",
  "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '"'"'{{password}}'"'"' VALID UNTIL '"'"'{{expiration}}'"'"'; GRANT pg_read_all_data TO \"{{name}}\";"}'
# PKI engine: role "web" issues the certificate examples/vault-pki.yaml asks for.
bao_api POST sys/mounts/pki '{"type": "pki", "config": {"max_lease_ttl": "8760h"}}'
bao_api POST pki/root/generate/internal '{"common_name": "secretsync demo CA", "ttl": "8760h"}'
bao_api POST pki/roles/web '{"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "72h"}'
log "OpenBao on $BAO_ADDR (root token: root), seeded: KV v2 + database engine + PKI"

# ------------------------------------------------------------------ AWS emulator
AWS_PORT=$(free_port)
cat >"$RUN/aws-seed.json" <<'JSON'
{
  "secrets": [
    {"name": "demo/db", "value": "{\"username\": \"app\", \"password\": \"demo-db-password\", \"host\": \"db\", \"port\": 5432}",
     "tags": {"team": "demo"}}
  ],
  "parameters": [
    {"name": "/demo/app/log-level", "type": "String", "value": "info"},
    {"name": "/demo/app/db/host", "type": "String", "value": "db.demo.svc"},
    {"name": "/demo/app/db/password", "type": "SecureString", "value": "demo-ssm-password"}
  ]
}
JSON
start awsemu "$RUN/awsemu.log" "$RUN/bin/awsemu" --addr "127.0.0.1:$AWS_PORT" --seed "$RUN/aws-seed.json" \
  --region eu-west-1 --access-key-id "$AWS_ACCESS_KEY" --secret-access-key "$AWS_SECRET_KEY"
wait_for "AWS emulator" 30 http_ok "http://127.0.0.1:$AWS_PORT/_emu/health"
log "AWS emulator on http://127.0.0.1:$AWS_PORT, seeded: 1 secret, 3 parameters"

# ------------------------------------------------------------------ the operator
k create namespace "$OPERATOR_NS" >/dev/null
METRICS_PORT=$(free_port)
PROBE_PORT=$(free_port)
if [[ $DEMO_OPERATOR == 1 ]]; then
# KUBECONFIG (exported above) points the operator at the demo control plane. The AWS
# variables keep the SDK's default chain from probing anything outside this machine.
start secretsync "$RUN/secretsync.log" env POD_NAMESPACE="$OPERATOR_NS" AWS_EC2_METADATA_DISABLED=true \
  AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= AWS_PROFILE= AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  "$ROOT/bin/secretsync" --leader-elect=false --operator-namespace="$OPERATOR_NS" \
  --metrics-bind-address="127.0.0.1:$METRICS_PORT" --health-probe-bind-address="127.0.0.1:$PROBE_PORT" \
  --zap-encoder=console
wait_for "secretsync /readyz" 60 http_ok "http://127.0.0.1:$PROBE_PORT/readyz"
fi

# ------------------------------------------------------------------ examples
# The examples point at the conventional ports; rewrite them to this run's.
for f in examples/*.yaml; do
  sed -e "s#127\.0\.0\.1:4566#127.0.0.1:$AWS_PORT#g" \
      -e "s#127\.0\.0\.1:8200#127.0.0.1:$BAO_PORT#g" \
      -e "s#127\.0\.0\.1:5432#127.0.0.1:$PG_PORT#g" "$f" >"$RUN/examples/$(basename "$f")"
done
log "applying examples/"
k apply --server-side --field-manager=secretsync-demo -f "$RUN/examples/" >/dev/null

if [[ $DEMO_OPERATOR != 1 ]]; then
  k get secretstores,clustersecretstores,externalsecrets -A
  if [[ $DEMO_EXIT == 1 ]]; then
    log "DEMO_OPERATOR=0: environment up, seeded and examples applied; not waiting for Ready"
    exit 0
  fi
  cat <<EOF

Everything but the operator is running. Run it against this environment:

  export KUBECONFIG=$KUBECONFIG POD_NAMESPACE=$OPERATOR_NS AWS_EC2_METADATA_DISABLED=true
  go run . --leader-elect=false --operator-namespace=$OPERATOR_NS \\
    --metrics-bind-address=127.0.0.1:$METRICS_PORT --health-probe-bind-address=127.0.0.1:$PROBE_PORT

  OpenBao: $BAO_ADDR (token root)   AWS emulator: http://127.0.0.1:$AWS_PORT   PostgreSQL: 127.0.0.1:$PG_PORT
  Logs: $RUN

Press Ctrl-C to stop everything.
EOF
  while true; do
    for i in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$i]}" 2>/dev/null || die "${NAMES[$i]} exited; see $RUN"
    done
    sleep 2
  done
fi

# ------------------------------------------------------------------ wait for Ready
all_ready() {
  local kind bad
  for kind in secretstores clustersecretstores externalsecrets; do
    bad=$(k get "$kind" -A -o go-template='{{range .items}}{{$ok := false}}{{range .status.conditions}}{{if and (eq .type "Ready") (eq .status "True")}}{{$ok = true}}{{end}}{{end}}{{if not $ok}}{{.metadata.name}} {{end}}{{end}}') || return 1
    [[ -z $bad ]] || return 1
  done
}
log "waiting up to ${DEMO_TIMEOUT}s for every store and ExternalSecret to be Ready"
deadline=$((SECONDS + DEMO_TIMEOUT))
ready=0
while ((SECONDS < deadline)); do
  if all_ready; then ready=1; break; fi
  kill -0 "${PIDS[-1]}" 2>/dev/null || { log "secretsync exited; last log lines:"; tail -20 "$RUN/secretsync.log" >&2; break; }
  sleep 1
done

echo
k get secretstores,clustersecretstores,externalsecrets -A
echo
echo "Synced Secrets (key names only):"
k get externalsecrets -A -o go-template='{{range .items}}{{.metadata.namespace}} {{if .status.target}}{{.status.target.name}}{{else if .spec.target.name}}{{.spec.target.name}}{{else}}{{.metadata.name}}{{end}}{{"\n"}}{{end}}' |
  while read -r ns name; do
    keys=$(k get secret -n "$ns" "$name" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}' 2>/dev/null) || keys="(no Secret)"
    printf '  %-40s %s\n' "$ns/$name" "$keys"
  done
echo

if [[ $ready != 1 ]]; then
  log "NOT everything is Ready after ${DEMO_TIMEOUT}s. Conditions:"
  k get secretstores,clustersecretstores,externalsecrets -A -o go-template='{{range .items}}{{.kind}} {{.metadata.name}}: {{range .status.conditions}}{{.type}}={{.status}} {{.reason}}: {{.message}}{{end}}{{"\n"}}{{end}}' >&2 || true
  log "operator log: $RUN/secretsync.log"
  DEMO_KEEP=1
  exit 1
fi
log "everything is Ready"

if [[ $DEMO_EXIT == 1 ]]; then
  exit 0
fi
cat <<EOF

The demo is running. In another shell:

  export KUBECONFIG=$KUBECONFIG
  kubectl get secretstores,clustersecretstores,externalsecrets -A
  kubectl -n secretsync-demo get secrets
  kubectl -n secretsync-demo annotate externalsecret app-secrets secretsync.dev/force-sync="\$(date +%s)" --overwrite

  OpenBao:      VAULT_ADDR=$BAO_ADDR VAULT_TOKEN=root $BAO kv put secret/demo/app api-key=rotated region=eu
  AWS emulator: http://127.0.0.1:$AWS_PORT  (control endpoints under /_emu/, e.g. /_emu/calls)
  PostgreSQL:   127.0.0.1:$PG_PORT (user $PG_ADMIN)
  Metrics:      http://127.0.0.1:$METRICS_PORT/metrics
  Logs:         $RUN

Press Ctrl-C to stop everything.
EOF
# Stay up until Ctrl-C, or until the operator or another component exits.
while true; do
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "${NAMES[$i]} exited; see $RUN"
  done
  sleep 2
done
