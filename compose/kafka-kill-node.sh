#!/usr/bin/env bash
# SIGKILL node N (1-based) of the cluster started by kafka-up.sh. Its data is
# kept; bring it back with kafka-start-node.sh N.
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=kafka/lib.sh
source "$COMPOSE_DIR/kafka/lib.sh"

n="${1:-}"
[[ "$n" =~ ^[1-9]$ ]] || die "usage: $0 NODE   (1-based node number)"
load_state || die "no Kafka cluster state in $STATE_DIR (run kafka-up.sh first)"
(( n <= KAFKA_NODES )) || die "node $n does not exist (cluster has $KAFKA_NODES node(s))"

pid="$(node_pid "$n")"
if [[ -z "$pid" ]]; then
  log "node $n is not running"
  exit 0
fi
kill -KILL "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.1; done
pid_alive "$pid" && die "node $n (pid $pid) did not die"
rm -f "$(node_dir "$n")/pid"
finish_cds_dump "$n" 0
log "killed node $n (pid $pid)"
