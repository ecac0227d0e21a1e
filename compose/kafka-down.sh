#!/usr/bin/env bash
# Stop the Kafka cluster started by kafka-up.sh and delete its data and state.
# SIGTERM first, SIGKILL after KAFKA_STOP_TIMEOUT seconds (default 15).
# Succeeds when nothing is running. KAFKA_KEEP_LOGS=1 keeps $STATE_DIR/node-*/logs.
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=kafka/lib.sh
source "$COMPOSE_DIR/kafka/lib.sh"

TIMEOUT_S="${KAFKA_STOP_TIMEOUT:-15}"

if [[ ! -d "$STATE_DIR" ]]; then
  log "nothing to stop (no state in $STATE_DIR)"
  exit 0
fi

take_lock 60

KAFKA_DATA_DIR=""
load_state || true

pids=() nodes=()
for d in "$STATE_DIR"/node-*; do
  [[ -d "$d" ]] || continue
  n="${d##*/node-}"
  nodes+=("$n")
  pid="$(node_pid "$n")"
  [[ -n "$pid" ]] && pids+=("$pid")
done

if (( ${#pids[@]} )); then
  log "stopping Kafka node process(es): ${pids[*]}"
  stop_pids "$TIMEOUT_S" "${pids[@]}"
else
  log "no Kafka node is running"
fi
# Install a CDS archive recorded by a node that shut down cleanly (see lib.sh).
for n in "${nodes[@]}"; do
  clean=1
  pid="$(cat "$(node_dir "$n")/pid" 2>/dev/null || true)"
  for k in "${KILLED_PIDS[@]}"; do [[ "$k" == "$pid" ]] && clean=0; done
  finish_cds_dump "$n" "$clean"
done

if [[ -n "$KAFKA_DATA_DIR" && -d "$KAFKA_DATA_DIR" && "$KAFKA_DATA_DIR" == *strata-kafka* ]]; then
  rm -rf "$KAFKA_DATA_DIR"
fi
if [[ "${KAFKA_KEEP_LOGS:-0}" == 1 ]]; then
  find "$STATE_DIR" -mindepth 1 -maxdepth 1 ! -name 'node-*' -exec rm -rf {} +
  rm -f "$STATE_DIR"/node-*/pid "$STATE_DIR"/node-*/server.properties
  log "kept logs in $STATE_DIR"
else
  rm -rf "$STATE_DIR"
fi
log "down"
