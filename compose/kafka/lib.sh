# shellcheck shell=bash
# Shared code for compose/kafka-*.sh. Sourced, never executed.
# Callers set `set -euo pipefail` and COMPOSE_DIR before sourcing.

KAFKA_DIR="$COMPOSE_DIR/kafka"
STATE_DIR="${STRATA_KAFKA_STATE:-/tmp/strata-kafka}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE_DIR="$KAFKA_DIR/target"

# JVM settings. Defaults are sized for a 2-core / 24 GiB box running up to 3
# nodes next to the test binaries. TieredStopAtLevel=1 (C1 only) roughly
# halves start-up CPU; set KAFKA_JVM_PERFORMANCE_OPTS to drop it for soaks.
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1 -XX:+PerfDisableSharedMem -Djava.awt.headless=true}"
# Short-lived helper JVMs (format, readiness wait, CLI tools).
TOOL_JVM_OPTS="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+PerfDisableSharedMem -Dlog4j2.configurationFile=$KAFKA_DIR/tools-log4j2.properties"

log() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }

require_cmds() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' not found on PATH (need a Java 17+ JDK and Maven 3.x)"
  done
  local v
  v="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}')"
  [[ "${v%%.*}" =~ ^[0-9]+$ ]] || die "cannot determine the Java version (java -version)"
  (( ${v%%.*} >= 17 )) || die "Kafka 4.x brokers need Java 17+, found Java $v"
}

valid_node_count() { [[ "$1" =~ ^[1-9]$ ]]; }

node_dir() { printf '%s/node-%s' "$STATE_DIR" "$1"; }

# pid_alive PID: running and not a zombie.
pid_alive() {
  local pid="$1" stat
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != "Z" ]]
}

# node_pid N: pid of node N if it is alive and really our broker, else empty.
node_pid() {
  local n="$1" f pid cmd
  f="$(node_dir "$n")/pid"
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  pid_alive "$pid" || return 0
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$(node_dir "$n")/server.properties"* ]] || return 0
  printf '%s' "$pid"
}

load_state() {
  [[ -f "$STATE_DIR/state.env" ]] || return 1
  # shellcheck disable=SC1091
  source "$STATE_DIR/state.env"
}

# port_in_use PORT: something listens on 127.0.0.1/any address at PORT.
port_in_use() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]] && return 0
    return 1
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# Resolve (and cache) the runtime classpath. Prints it.
resolve_classpath() {
  local cpfile="$CACHE_DIR/classpath-$KAFKA_VERSION.txt" ok=1 jar
  if [[ -s "$cpfile" && "$cpfile" -nt "$KAFKA_DIR/pom.xml" ]]; then
    local jars=()
    IFS=: read -r -a jars <"$cpfile" || true
    for jar in "${jars[@]}"; do [[ -f "$jar" ]] || { ok=0; break; }; done
    if (( ok )); then cat "$cpfile"; return 0; fi
  fi
  mkdir -p "$CACHE_DIR"
  local tmp="$cpfile.tmp.$$"
  local mvnargs=(-B -q -Dstyle.color=never -f "$KAFKA_DIR/pom.xml" "-Dkafka.version=$KAFKA_VERSION"
    dependency:build-classpath "-Dmdep.outputFile=$tmp" -Dmdep.includeScope=runtime)
  log "resolving Kafka $KAFKA_VERSION classpath with Maven (offline first)"
  if ! mvn -o "${mvnargs[@]}" >"$CACHE_DIR/mvn.log" 2>&1; then
    log "offline resolution failed; downloading from Maven Central (first run)"
    if ! mvn "${mvnargs[@]}" >"$CACHE_DIR/mvn.log" 2>&1; then
      tail -n 40 "$CACHE_DIR/mvn.log" >&2
      die "Maven could not resolve Kafka $KAFKA_VERSION (see $CACHE_DIR/mvn.log)"
    fi
  fi
  [[ -s "$tmp" ]] || die "Maven produced an empty classpath (see $CACHE_DIR/mvn.log)"
  mv -f "$tmp" "$cpfile"
  cat "$cpfile"
}

# Compile the helper (once per Kafka version / source change). Prints its dir.
build_helper() {
  local cp="$1" out="$CACHE_DIR/helper-$KAFKA_VERSION" src="$KAFKA_DIR/src/StrataKafkaTool.java"
  if [[ -f "$out/StrataKafkaTool.class" && "$out/StrataKafkaTool.class" -nt "$src" ]]; then
    printf '%s' "$out"; return 0
  fi
  command -v javac >/dev/null 2>&1 || die "'javac' not found: a full JDK 17+ is needed (not just a JRE)"
  rm -rf "$out.tmp.$$"; mkdir -p "$out.tmp.$$"
  javac -nowarn -encoding UTF-8 -cp "$cp" -d "$out.tmp.$$" "$src" >&2 || die "failed to compile $src"
  rm -rf "$out"; mv "$out.tmp.$$" "$out"
  printf '%s' "$out"
}

# run_tool CP HELPERDIR ARGS...: run the helper JVM (output to stderr).
run_tool() {
  local cp="$1" helper="$2"; shift 2
  # shellcheck disable=SC2086
  java $TOOL_JVM_OPTS -cp "$helper:$cp" StrataKafkaTool "$@" >&2
}

# start_node N: launch node N in the background, detached, and record its pid.
start_node() {
  local n="$1" d pid
  d="$(node_dir "$n")"
  mkdir -p "$d/logs"
  # setsid: own session so a Ctrl-C in the calling terminal/make does not
  # reach the broker; all fds redirected so callers capturing our stdout
  # (e.g. BOOTSTRAP=$(kafka-up.sh)) do not block on the broker.
  # shellcheck disable=SC2086
  setsid java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS ${KAFKA_OPTS:-} \
    "-Dkafka.logs.dir=$d/logs" "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties" \
    -cp "$(cat "$STATE_DIR/classpath")" kafka.Kafka "$d/server.properties" \
    </dev/null >"$d/logs/stdout.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$d/pid"
}

# dump_node_logs N...: last 40 lines of each node's log, to stderr.
dump_node_logs() {
  local n d f
  for n in "$@"; do
    d="$(node_dir "$n")"
    for f in "$d/logs/server.log" "$d/logs/stdout.log"; do
      [[ -s "$f" ]] || continue
      printf '\n===== node %s: last 40 lines of %s =====\n' "$n" "$f" >&2
      tail -n 40 "$f" >&2
    done
  done
}

# stop_pids TIMEOUT_S PID...: TERM, wait, then KILL stragglers.
stop_pids() {
  local timeout="$1"; shift
  local pid left deadline
  (( $# )) || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$(( $(date +%s) + timeout ))
  while :; do
    left=()
    for pid in "$@"; do pid_alive "$pid" && left+=("$pid"); done
    (( ${#left[@]} )) || return 0
    (( $(date +%s) < deadline )) || break
    sleep 0.2
  done
  log "still running after ${timeout}s, sending SIGKILL to: ${left[*]}"
  for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  deadline=$(( $(date +%s) + 10 ))
  for pid in "${left[@]}"; do
    while pid_alive "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
  done
}
