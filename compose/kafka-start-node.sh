#!/usr/bin/env bash
# Restart node N (1-based) of the cluster started by kafka-up.sh (after
# kafka-kill-node.sh N) and wait until it is registered and unfenced again.
# Env: KAFKA_START_TIMEOUT (60 s).
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=kafka/lib.sh
source "$COMPOSE_DIR/kafka/lib.sh"

n="${1:-}"
[[ "$n" =~ ^[1-9]$ ]] || die "usage: $0 NODE   (1-based node number)"
load_state || die "no Kafka cluster state in $STATE_DIR (run kafka-up.sh first)"
(( n <= KAFKA_NODES )) || die "node $n does not exist (cluster has $KAFKA_NODES node(s))"
TIMEOUT_S="${KAFKA_START_TIMEOUT:-60}"
take_lock 180

pid="$(node_pid "$n")"
if [[ -n "$pid" ]]; then
  log "node $n is already running (pid $pid)"
  exit 0
fi
ensure_helper
start_node "$n"
pid="$(cat "$(node_dir "$n")/pid")"
log "started node $n (pid $pid); waiting up to ${TIMEOUT_S}s for it to rejoin"

addr="$(cut -d, -f"$n" <<<"$KAFKA_BOOTSTRAP")"
rc=0
run_tool "$(cat "$STATE_DIR/classpath")" "$HELPER_JAR" wait --bootstrap "$addr" \
  --expect 1 --require-node "$n" --timeout-ms "$(( TIMEOUT_S * 1000 ))" --pids "$pid" || rc=$?
if (( rc != 0 )); then
  dump_node_logs "$n"
  die "node $n did not come back (rc=$rc)"
fi
log "node $n is back"
