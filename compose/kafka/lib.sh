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
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC "-Xlog:cds*=off,cds+dynamic*=off" -XX:TieredStopAtLevel=1 -XX:+PerfDisableSharedMem "-Dlog4j2.configurationFile=$KAFKA_DIR/tools-log4j2.properties")

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

# take_lock TIMEOUT_S: serialise kafka-up/-down/-start-node (fd 9, released at exit).
take_lock() {
  mkdir -p "$(dirname "$STATE_DIR")"
  exec 9>"${STATE_DIR%/}.lock"
  command -v flock >/dev/null 2>&1 || return 0
  flock -w "$1" 9 || die "another kafka-up/kafka-down holds ${STATE_DIR%/}.lock for more than $1s"
}

load_state() {
  [[ -f "$STATE_DIR/state.env" ]] || return 1
  # shellcheck disable=SC1091
  source "$STATE_DIR/state.env"
}

# ensure_helper: make sure HELPER_JAR (from state.env) still exists, e.g.
# after compose/kafka/target was cleaned while a cluster was running.
ensure_helper() {
  if [[ ! -f "${HELPER_JAR:-}" ]]; then
    HELPER_JAR="$(build_helper "$(cat "$STATE_DIR/classpath")")"
  fi
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

# Compile the helper into a jar (once per Kafka version / source change).
# A jar rather than a class dir because CDS only archives classes from jars.
build_helper() {
  local cp="$1" jar="$CACHE_DIR/helper-$KAFKA_VERSION.jar" src="$KAFKA_DIR/src/StrataKafkaTool.java" tmp
  if [[ -f "$jar" && "$jar" -nt "$src" ]]; then
    printf '%s' "$jar"; return 0
  fi
  command -v javac >/dev/null 2>&1 || die "'javac' not found: a full JDK 17+ is needed (not just a JRE)"
  command -v jar >/dev/null 2>&1 || die "'jar' not found: a full JDK 17+ is needed (not just a JRE)"
  tmp="$CACHE_DIR/helper.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/classes"
  javac -nowarn -encoding UTF-8 -cp "$cp" -d "$tmp/classes" "$src" >&2 || die "failed to compile $src"
  jar cf "$tmp/helper.jar" -C "$tmp/classes" . >&2 || die "failed to package the helper jar"
  mv -f "$tmp/helper.jar" "$jar"; rm -rf "$tmp"
  printf '%s' "$jar"
}

# --- AppCDS ------------------------------------------------------------------
# Class-data-sharing archives cut JVM start-up (~2 s per broker on 2 cores) and
# share class metadata between nodes. The first run of each JVM kind records a
# dynamic archive at exit (-XX:ArchiveClassesAtExit); later runs map it. A
# stale or mismatched archive is ignored by the JVM (-Xshare:auto), and the
# file name includes a hash of the classpath and the JDK. KAFKA_CDS=0 disables.
KAFKA_CDS="${KAFKA_CDS:-1}"

# cds_archive NAME CLASSPATH: prints the archive path for this JVM kind.
cds_archive() {
  local name="$1" cp="$2" jh key
  jh="$(readlink -f "$(command -v java)")"; jh="${jh%/bin/java}"
  key="$(printf '%s\n%s %s\n' "$cp" "$jh" "$(stat -c %Y:%s "$jh/lib/modules" 2>/dev/null || true)" | md5sum | cut -c1-12)"
  printf '%s/cds/%s-%s-%s.jsa' "$CACHE_DIR" "$name" "$KAFKA_VERSION" "$key"
}

# run_tool CP HELPERJAR SUBCOMMAND ARGS...: run the helper JVM (output to stderr).
run_tool() {
  local cp="$1" helper="$2" rc=0 archive="" dump="" cds=()
  shift 2
  if [[ "$KAFKA_CDS" == 1 ]]; then
    archive="$(cds_archive "tool-$1" "$helper:$cp")"
    if [[ -s "$archive" ]]; then
      cds=("-XX:SharedArchiveFile=$archive")
    else
      mkdir -p "${archive%/*}"; dump="$archive.tmp.$$"; cds=("-XX:ArchiveClassesAtExit=$dump")
    fi
  fi
  java "${TOOL_JVM_OPTS[@]}" "${cds[@]}" -cp "$helper:$cp" StrataKafkaTool "$@" >&2 || rc=$?
  if [[ -n "$dump" ]]; then
    if (( rc == 0 )) && [[ -s "$dump" ]]; then mv -f "$dump" "$archive"; else rm -f "$dump"; fi
  fi
  return "$rc"
}

# start_node N [record-cds]: launch node N in the background, detached, and
# record its pid. With record-cds (and no archive yet) the node writes a CDS
# archive when it exits cleanly; kafka-down.sh then installs it.
start_node() {
  local n="$1" record="${2:-}" d pid cp archive cds=()
  d="$(node_dir "$n")"
  mkdir -p "$d/logs"
  cp="$(cat "$STATE_DIR/classpath")"
  rm -f "$d/cds-dump"
  if [[ "$KAFKA_CDS" == 1 ]]; then
    archive="$(cds_archive broker "$cp")"
    if [[ -s "$archive" ]]; then
      cds=("-XX:SharedArchiveFile=$archive")
    elif [[ "$record" == 1 ]]; then
      mkdir -p "${archive%/*}"
      cds=("-XX:ArchiveClassesAtExit=$archive.tmp.node$n.$$")
      printf '%s\n%s\n' "$archive.tmp.node$n.$$" "$archive" >"$d/cds-dump"
    fi
  fi
  # setsid: own session so a Ctrl-C in the calling terminal/make does not
  # reach the broker; all fds redirected (and the lock fd 9 closed) so callers
  # capturing our stdout (BOOTSTRAP=$(kafka-up.sh)) do not block on the broker.
  # shellcheck disable=SC2086
  setsid java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS "${cds[@]}" "-Xlog:cds*=off" ${KAFKA_OPTS:-} \
    "-Dkafka.logs.dir=$d/logs" "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$d/server.properties" \
    </dev/null >"$d/logs/stdout.log" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$d/pid"
}

# finish_cds_dump N CLEAN: after node N exited, install (CLEAN=1) or discard
# the CDS archive it recorded.
finish_cds_dump() {
  local d tmp final
  d="$(node_dir "$1")"
  [[ -f "$d/cds-dump" ]] || return 0
  { read -r tmp; read -r final; } <"$d/cds-dump"
  if [[ "$2" == 1 && -s "$tmp" && ! -e "$final" ]]; then
    mv -f "$tmp" "$final"
  else
    rm -f "$tmp"
  fi
  rm -f "$d/cds-dump"
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
# Sets KILLED_PIDS to the pids that needed SIGKILL.
KILLED_PIDS=()
stop_pids() {
  local timeout="$1"; shift
  local pid left deadline
  KILLED_PIDS=()
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
  KILLED_PIDS=("${left[@]}")
  deadline=$(( $(date +%s) + 10 ))
  for pid in "${left[@]}"; do
    while pid_alive "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
  done
}
