#!/usr/bin/env bash
# Start a real Apache Kafka 4.x cluster in KRaft combined mode (every node is
# broker+controller) on 127.0.0.1, from Maven Central jars. No Docker.
#
#   compose/kafka-up.sh [NODES]        (or KAFKA_NODES=N; default 1, max 9)
#
# Without NODES/KAFKA_NODES an already running cluster of any size is reused;
# with an explicit count that differs from the running cluster it fails.
# Node i (1-based) listens on 127.0.0.1:$((9091+i)) (PLAINTEXT clients) and
# 127.0.0.1:$((19091+i)) (CONTROLLER). Progress goes to stderr; the last (and
# only) line on stdout is the bootstrap address, e.g.
#   BOOTSTRAP=$(compose/kafka-up.sh)
# It is also written to $STRATA_KAFKA_STATE/bootstrap once the cluster is ready.
# If a cluster started by this script is already running it is reused.
#
# Env: KAFKA_NODES, KAFKA_VERSION (4.4.0), KAFKA_START_TIMEOUT (60 s),
#      KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (19092),
#      STRATA_KAFKA_STATE (/tmp/strata-kafka), KAFKA_DATA_ROOT (${TMPDIR:-/tmp}),
#      KAFKA_WARMUP (1: create __consumer_offsets/__transaction_state before
#      returning), KAFKA_INTERNAL_PARTITIONS (5), KAFKA_HEAP_OPTS,
#      KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_OPTS, KAFKA_EXTRA_CONFIG (extra
#      server.properties lines, newline separated).
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=kafka/lib.sh
source "$COMPOSE_DIR/kafka/lib.sh"

T0="$(now_ms)"
NODES="${1:-${KAFKA_NODES:-}}"
NODES_EXPLICIT=1
[[ -n "$NODES" ]] || { NODES=1; NODES_EXPLICIT=0; }
valid_node_count "$NODES" || die "node count must be 1..9, got '$NODES'"
TIMEOUT_S="${KAFKA_START_TIMEOUT:-60}"
[[ "$TIMEOUT_S" =~ ^[0-9]+$ ]] || die "KAFKA_START_TIMEOUT must be whole seconds, got '$TIMEOUT_S'"
PORT_BASE="${KAFKA_PORT:-9092}"
CTRL_PORT_BASE="${KAFKA_CONTROLLER_PORT:-19092}"
WARMUP="${KAFKA_WARMUP:-1}"
INTERNAL_PARTITIONS="${KAFKA_INTERNAL_PARTITIONS:-5}"

require_cmds java mvn setsid

# Serialise concurrent kafka-up/kafka-down calls (e.g. parallel test packages).
take_lock 180

elapsed() { printf '%d.%03ds' $(( ($(now_ms) - T0) / 1000 )) $(( ($(now_ms) - T0) % 1000 )); }

# wait_ready BOOTSTRAP EXPECT TIMEOUT_S [--warmup]: exits non-zero (after
# dumping logs and stopping what we started) if the cluster does not answer.
wait_ready() {
  local bootstrap="$1" expect="$2" timeout="$3"; shift 3
  local pids=() i pid rc=0
  for (( i = 1; i <= KAFKA_NODES; i++ )); do
    pid="$(node_pid "$i")"; [[ -n "$pid" ]] && pids+=("$pid")
  done
  run_tool "$(cat "$STATE_DIR/classpath")" "$HELPER_JAR" wait --bootstrap "$bootstrap" \
    --expect "$expect" --timeout-ms "$(( timeout * 1000 ))" \
    --pids "$(IFS=,; printf '%s' "${pids[*]}")" "$@" || rc=$?
  (( rc == 0 )) && return 0
  case "$rc" in
    2) log "cluster did not become ready within ${timeout}s" ;;
    3) log "a Kafka node exited during start-up" ;;
    *) log "readiness check failed (rc=$rc)" ;;
  esac
  dump_node_logs $(seq 1 "$KAFKA_NODES")
  log "stopping the nodes; logs kept in $STATE_DIR (kafka-down.sh removes them)"
  stop_pids 5 "${pids[@]}"
  for (( i = 1; i <= KAFKA_NODES; i++ )); do finish_cds_dump "$i" 0; done
  rm -f "$STATE_DIR"/node-*/pid "$STATE_DIR/bootstrap"
  exit 1
}

# ---------------------------------------------------------------- reuse ----
if load_state; then
  alive=() dead=()
  for (( i = 1; i <= KAFKA_NODES; i++ )); do
    if [[ -n "$(node_pid "$i")" ]]; then alive+=("$i"); else dead+=("$i"); fi
  done
  if (( ${#alive[@]} )); then
    ensure_helper
    # Without an explicit node count, any running cluster will do.
    (( NODES_EXPLICIT )) || NODES="$KAFKA_NODES"
    if [[ "$KAFKA_NODES" != "$NODES" ]]; then
      die "a ${KAFKA_NODES}-node Kafka cluster is already running at $KAFKA_BOOTSTRAP (state: $STATE_DIR); run compose/kafka-down.sh first to start a ${NODES}-node one"
    fi
    if (( ${#dead[@]} )); then
      log "cluster at $KAFKA_BOOTSTRAP is running with node(s) ${dead[*]} down; restarting them"
      for i in "${dead[@]}"; do start_node "$i"; done
    else
      log "reusing the ${KAFKA_NODES}-node Kafka cluster already running at $KAFKA_BOOTSTRAP (state: $STATE_DIR)"
    fi
    wait_ready "$KAFKA_BOOTSTRAP" "$KAFKA_NODES" "$TIMEOUT_S"
    printf '%s\n' "$KAFKA_BOOTSTRAP" >"$STATE_DIR/bootstrap"
    printf '%s\n' "$KAFKA_BOOTSTRAP"
    exit 0
  fi
  log "removing stale state of a previous cluster that is no longer running ($STATE_DIR)"
  if [[ -n "${KAFKA_DATA_DIR:-}" && -d "$KAFKA_DATA_DIR" && "$KAFKA_DATA_DIR" == *strata-kafka* ]]; then
    rm -rf "$KAFKA_DATA_DIR"
  fi
  rm -rf "$STATE_DIR"
elif [[ -d "$STATE_DIR" ]]; then
  log "removing leftover $STATE_DIR (kept logs or an interrupted start)"
  rm -rf "$STATE_DIR"
fi

# ---------------------------------------------------------------- ports ----
bootstrap="" voters="" busy=()
for (( i = 1; i <= NODES; i++ )); do
  cport=$(( PORT_BASE + i - 1 )); qport=$(( CTRL_PORT_BASE + i - 1 ))
  port_in_use "$cport" && busy+=("$cport (client port of node $i)")
  port_in_use "$qport" && busy+=("$qport (controller port of node $i)")
  bootstrap+="${bootstrap:+,}127.0.0.1:$cport"
  voters+="${voters:+,}127.0.0.1:$qport"
done
if (( ${#busy[@]} )); then
  for b in "${busy[@]}"; do log "port $b is already in use"; done
  die "cannot start Kafka: port(s) in use (see above); stop whatever listens there or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
fi

# ------------------------------------------------------------ classpath ----
CP="$(resolve_classpath)"
HELPER_JAR="$(build_helper "$CP")"

# --------------------------------------------------------------- config ----
mkdir -p "$STATE_DIR"
printf '%s\n' "$CP" >"$STATE_DIR/classpath"
DATA_DIR="$(mktemp -d "${KAFKA_DATA_ROOT:-${TMPDIR:-/tmp}}/strata-kafka-data.XXXXXX")"

# Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
kafka_uuid() {
  local u
  while :; do
    u="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "${u:0:1}" != "-" && "$u" != "AAAAAAAAAAAAAAAAAAAAAA" && "$u" != "AAAAAAAAAAAAAAAAAAAAAQ" ]] && break
  done
  printf '%s' "$u"
}
CLUSTER_ID="$(kafka_uuid)"

rf=$(( NODES < 3 ? NODES : 3 ))
isr=$(( rf > 1 ? 2 : 1 ))

cat >"$STATE_DIR/state.env" <<EOF
KAFKA_NODES=$NODES
KAFKA_BOOTSTRAP=$bootstrap
KAFKA_DATA_DIR=$DATA_DIR
KAFKA_CLUSTER_ID=$CLUSTER_ID
KAFKA_RUNNING_VERSION=$KAFKA_VERSION
HELPER_JAR=$HELPER_JAR
EOF

initial_controllers=""
configs=()
for (( i = 1; i <= NODES; i++ )); do
  d="$(node_dir "$i")"; mkdir -p "$d/logs"
  cport=$(( PORT_BASE + i - 1 )); qport=$(( CTRL_PORT_BASE + i - 1 ))
  initial_controllers+="${initial_controllers:+,}$i@127.0.0.1:$qport:$(kafka_uuid)"
  cat >"$d/server.properties" <<EOF
# Generated by compose/kafka-up.sh (node $i of $NODES). Data: $DATA_DIR/node-$i
process.roles=broker,controller
node.id=$i
listeners=PLAINTEXT://127.0.0.1:$cport,CONTROLLER://127.0.0.1:$qport
advertised.listeners=PLAINTEXT://127.0.0.1:$cport,CONTROLLER://127.0.0.1:$qport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$voters
log.dirs=$DATA_DIR/node-$i

num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$INTERNAL_PARTITIONS
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=$INTERNAL_PARTITIONS
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr

# Compaction/retention react quickly (tests set segment.ms / min.cleanable.dirty.ratio per topic).
log.cleaner.enable=true
log.cleaner.backoff.ms=1000
log.cleaner.dedupe.buffer.size=33554432
log.retention.check.interval.ms=5000
log.segment.delete.delay.ms=1000

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '\n# KAFKA_EXTRA_CONFIG\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$d/server.properties"
  fi
  configs+=("$d/server.properties")
done

if (( NODES == 1 )); then quorum=standalone; else quorum="$initial_controllers"; fi
log "[$(elapsed)] formatting storage for $NODES node(s) in $DATA_DIR (cluster id $CLUSTER_ID)"
run_tool "$CP" "$HELPER_JAR" format "$CLUSTER_ID" "$quorum" "${configs[@]}" \
  >"$STATE_DIR/format.log" 2>&1 || { cat "$STATE_DIR/format.log" >&2; die "kafka storage format failed"; }

# ---------------------------------------------------------------- start ----
for (( i = 1; i <= NODES; i++ )); do start_node "$i" $(( i == 1 )); done
KAFKA_NODES="$NODES"
log "[$(elapsed)] started Kafka $KAFKA_VERSION node(s) (pids: $(cat "$STATE_DIR"/node-*/pid | paste -sd' ')); waiting up to ${TIMEOUT_S}s"

warm=()
[[ "$WARMUP" == 1 ]] && warm=(--warmup)
wait_ready "$bootstrap" "$NODES" "$TIMEOUT_S" "${warm[@]}"
log "[$(elapsed)] ready; logs: $STATE_DIR/node-*/logs/server.log"
printf '%s\n' "$bootstrap" >"$STATE_DIR/bootstrap"
printf '%s\n' "$bootstrap"
