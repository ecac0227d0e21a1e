#!/usr/bin/env bash
# Start private Redis, PostgreSQL, OpenSearch and Elasticsearch servers on
# 127.0.0.1 for the view sinks' tests. No Docker: Redis and PostgreSQL are
# Debian packages (installed with apt-get when missing and running as root),
# OpenSearch and Elasticsearch are their minimal distributions from Maven
# Central, run with the machine's Java.
#
#   compose/sinks-up.sh [redis] [postgres] [search] [elasticsearch]   (default: all four)
#   export $(compose/sinks-up.sh)
#
# stdout carries only the env lines of the requested servers, e.g.
#   STRATA_TEST_REDIS=redis://127.0.0.1:6380/0
#   STRATA_TEST_POSTGRES=postgres://strata:strata@127.0.0.1:5433/strata_test?sslmode=disable
#   STRATA_TEST_SEARCH=http://127.0.0.1:9201
#   STRATA_TEST_ELASTICSEARCH=http://127.0.0.1:9203
# and $STRATA_SINKS_STATE/env holds the lines of every running server.
# Progress goes to stderr. Servers already running are reused.
#
# Env: STRATA_SINKS_STATE (/tmp/strata-sinks), STRATA_SINKS_CACHE
#      (compose/sinks/target: the unpacked distributions), SINKS_USER
#      (nobody: who runs PostgreSQL, OpenSearch and Elasticsearch when the
#      script runs as root), SINKS_START_TIMEOUT (120 s), REDIS_PORT (6380),
#      PG_PORT (5433), PG_USER / PG_PASSWORD / PG_DATABASE (strata / strata /
#      strata_test), PG_BIN (newest /usr/lib/postgresql/N/bin), SEARCH_PORT
#      (9201), SEARCH_TRANSPORT_PORT (9301), OPENSEARCH_VERSION (2.19.6),
#      OPENSEARCH_HEAP (512m), OPENSEARCH_JAVA_OPTS (extra JVM flags),
#      ES_PORT (9203), ES_TRANSPORT_PORT (9303), ELASTICSEARCH_VERSION
#      (8.19.21), ELASTICSEARCH_HEAP (512m), ELASTICSEARCH_JAVA_OPTS.
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=sinks/lib.sh
source "$COMPOSE_DIR/sinks/lib.sh"

T0="$(now_ms)"
elapsed() { printf '%d.%03ds' $(( ($(now_ms) - T0) / 1000 )) $(( ($(now_ms) - T0) % 1000 )); }

WANT=("$@")
(( ${#WANT[@]} )) || WANT=("${ALL_SINKS[@]}")
for s in "${WANT[@]}"; do
  [[ " ${ALL_SINKS[*]} " == *" $s "* ]] || die "unknown server '$s': choose from ${ALL_SINKS[*]}"
done
wants() { [[ " ${WANT[*]} " == *" $1 "* ]]; }

TIMEOUT_S="${SINKS_START_TIMEOUT:-120}"
[[ "$TIMEOUT_S" =~ ^[0-9]+$ ]] || die "SINKS_START_TIMEOUT must be whole seconds, got '$TIMEOUT_S'"
for v in REDIS_PORT PG_PORT SEARCH_PORT SEARCH_TRANSPORT_PORT ES_PORT ES_TRANSPORT_PORT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a port number, got '${!v}'"
done
[[ "$OPENSEARCH_HEAP" =~ ^[0-9]+[mg]$ ]] || die "OPENSEARCH_HEAP must look like 512m or 1g, got '$OPENSEARCH_HEAP'"
[[ "$ELASTICSEARCH_HEAP" =~ ^[0-9]+[mg]$ ]] || die "ELASTICSEARCH_HEAP must look like 512m or 1g, got '$ELASTICSEARCH_HEAP'"
[[ "$PG_PASSWORD" =~ ^[A-Za-z0-9._~-]+$ && "$PG_USER" =~ ^[a-z_][a-z0-9_]*$ && "$PG_DATABASE" =~ ^[a-z_][a-z0-9_]*$ ]] ||
  die "PG_USER and PG_DATABASE must be lower-case SQL identifiers and PG_PASSWORD URL-safe ([A-Za-z0-9._~-])"
id "$RUN_AS" >/dev/null 2>&1 || die "user '$RUN_AS' (SINKS_USER) does not exist"

# ------------------------------------------------------------- packages ----
# install_missing: the Debian packages the requested servers need. As root
# with apt-get they are installed (apt-get update first); otherwise the
# error names the packages.
install_missing() {
  local pkgs=() bin
  if wants redis; then
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server)
  fi
  if wants postgres; then
    bin="$(pg_bindir)"
    [[ -n "$bin" && -x "$bin/initdb" && -x "$bin/pg_ctl" && -x "$bin/postgres" && -x "$bin/psql" ]] || pkgs+=(postgresql)
  fi
  if wants search || wants elasticsearch; then
    command -v unzip >/dev/null || pkgs+=(unzip)
  fi
  command -v curl >/dev/null || pkgs+=(curl)
  (( ${#pkgs[@]} )) || return 0
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing: ${pkgs[*]}; install them (Debian: sudo apt-get install ${pkgs[*]}) or run this script as root"
  fi
  log "[$(elapsed)] installing ${pkgs[*]} with apt-get (log: ${STATE_DIR%/}-apt.log)"
  # Debian's packages start their own default servers (Redis on 6379,
  # PostgreSQL's "main" cluster on 5432); ours use other ports and do not
  # depend on them.
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } \
      >"${STATE_DIR%/}-apt.log" 2>&1; then
    tail -n 20 "${STATE_DIR%/}-apt.log" >&2
    die "apt-get install ${pkgs[*]} failed (see ${STATE_DIR%/}-apt.log)"
  fi
}

# ----------------------------------------------- opensearch, elasticsearch ----
# java_home MIN WHAT: the JDK of `java` on PATH, which must be Java MIN+ for
# WHAT (OpenSearch 2.x: 11; Elasticsearch 8.x: 17).
java_home() {
  local v j
  command -v java >/dev/null || die "'java' not found on PATH ($2 needs Java $1+; CI has Java 17)"
  v="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}')"
  [[ "${v%%.*}" =~ ^[0-9]+$ ]] && (( ${v%%.*} >= $1 )) || die "$2 needs Java $1+, found '$v'"
  j="$(readlink -f "$(command -v java)")"
  printf '%s' "${j%/bin/java}"
}

# dist_home NAME GROUP VERSION SIZE: the unpacked minimal distribution
# GROUP:NAME:VERSION:zip (an integ-test-zip: the server with only a few
# modules), from the cache or resolved with Maven (offline first, so a warm
# ~/.m2 needs no network) and unpacked. SIZE is the download's, for the
# log. Prints its path.
dist_home() {
  local name="$1" group="$2" version="$3" size="$4"
  local home="$CACHE_DIR/$name-$version" dl tmp zip
  if [[ -f "$home/lib/$name-$version.jar" && -x "$home/bin/$name" ]]; then
    printf '%s' "$home"; return 0
  fi
  command -v mvn >/dev/null || die "'mvn' not found on PATH (Maven 3 resolves $name from Maven Central)"
  mkdir -p "$CACHE_DIR"
  dl="$CACHE_DIR/download-$name.$$"; rm -rf "$dl"
  local mvnargs=(-B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy
    "-Dartifact=$group:$name:$version:zip" "-DoutputDirectory=$dl")
  log "[$(elapsed)] resolving $name $version with Maven (offline first)"
  if ! mvn -o "${mvnargs[@]}" >"$CACHE_DIR/mvn-$name.log" 2>&1; then
    log "offline resolution failed; downloading $name from Maven Central (about $size, first run)"
    if ! mvn "${mvnargs[@]}" >"$CACHE_DIR/mvn-$name.log" 2>&1; then
      tail -n 40 "$CACHE_DIR/mvn-$name.log" >&2
      rm -rf "$dl"
      die "Maven could not resolve $group:$name:$version:zip (see $CACHE_DIR/mvn-$name.log)"
    fi
  fi
  zip="$dl/$name-$version.zip"
  [[ -s "$zip" ]] || die "Maven did not produce $zip (see $CACHE_DIR/mvn-$name.log)"
  tmp="$CACHE_DIR/unpack-$name.$$"; rm -rf "$tmp"; mkdir -p "$tmp"
  unzip -q "$zip" -d "$tmp" || die "could not unpack $zip"
  [[ -x "$tmp/$name-$version/bin/$name" ]] || die "$zip holds no $name-$version/bin/$name"
  rm -rf "$home"
  mv "$tmp/$name-$version" "$home"
  rm -rf "$tmp" "$dl"
  printf '%s' "$home"
}

# start_search: launch the OpenSearch node in the background (wait_health
# waits for it), so PostgreSQL's initdb runs while the JVM starts.
start_search() {
  local d home jh
  d="$(sink_dir search)"
  home="$(dist_home opensearch org.opensearch.distribution.integ-test-zip "$OPENSEARCH_VERSION" "56 MB")"
  jh="$(java_home 11 "OpenSearch $OPENSEARCH_VERSION")"
  "${AS_USER[@]}" test -r "$home/lib/opensearch-$OPENSEARCH_VERSION.jar" ||
    die "user $RUN_AS cannot read $home; set STRATA_SINKS_CACHE to a directory it can read, e.g. /tmp/strata-sinks-cache"
  own_dir "$d" "$d/config" "$d/data" "$d/logs" "$d/tmp"
  { printf -- '-Xms%s\n-Xmx%s\n' "$OPENSEARCH_HEAP" "$OPENSEARCH_HEAP"; cat "$SINKS_DIR/opensearch/jvm.options"; } >"$d/config/jvm.options"
  cp "$SINKS_DIR/opensearch/log4j2.properties" "$d/config/log4j2.properties"
  cat >"$d/config/opensearch.yml" <<EOF
# Generated by compose/sinks-up.sh: a single test node, HTTP without TLS or
# authentication (the minimal distribution has no security plugin), bound to
# 127.0.0.1 only.
cluster.name: strata-sinks
node.name: strata-sinks-1
path.data: $d/data
path.logs: $d/logs
network.host: 127.0.0.1
http.port: $SEARCH_PORT
transport.port: $SEARCH_TRANSPORT_PORT
discovery.type: single-node
# A shared test machine's disk can be nearly full; never mark indexes read-only.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  if [[ "$(id -u)" == 0 ]]; then chown -R "$RUN_AS:$(id -g "$RUN_AS")" "$d"; fi
  # setsid: a Ctrl-C in the calling terminal does not reach the node; all
  # fds redirected and the lock fd closed so $(sinks-up.sh) does not hang.
  # bin/opensearch ends in `exec java`, so $! becomes the JVM's pid.
  (cd "$d" && exec "${AS_USER[@]}" setsid env HOME="$d" OPENSEARCH_JAVA_HOME="$jh" OPENSEARCH_PATH_CONF="$d/config" \
    OPENSEARCH_TMPDIR="$d/tmp" OPENSEARCH_JAVA_OPTS="${OPENSEARCH_JAVA_OPTS:-}" \
    "$home/bin/opensearch" -p "$d/opensearch.pid" </dev/null >"$d/opensearch.log" 2>&1 9>&-) &
  printf '%s\n' "$!" >"$d/pid"
  STARTED+=(search)
  log "[$(elapsed)] started OpenSearch $OPENSEARCH_VERSION (pid $!, heap $OPENSEARCH_HEAP) on 127.0.0.1:$SEARCH_PORT"
}

# start_elasticsearch: launch the Elasticsearch node in the background
# (wait_health waits for it). bin/elasticsearch runs a launcher JVM that
# works out the server's JVM flags and runs the server JVM as its child;
# SIGTERM to the launcher stops both. $(sink_dir elasticsearch)/pid is the
# launcher's pid, elasticsearch.pid the server's.
start_elasticsearch() {
  local d home jh
  d="$(sink_dir elasticsearch)"
  home="$(dist_home elasticsearch org.elasticsearch.distribution.integ-test-zip "$ELASTICSEARCH_VERSION" "107 MB")"
  jh="$(java_home 17 "Elasticsearch $ELASTICSEARCH_VERSION")"
  "${AS_USER[@]}" test -r "$home/lib/elasticsearch-$ELASTICSEARCH_VERSION.jar" ||
    die "user $RUN_AS cannot read $home; set STRATA_SINKS_CACHE to a directory it can read, e.g. /tmp/strata-sinks-cache"
  own_dir "$d" "$d/config" "$d/data" "$d/logs" "$d/tmp"
  { printf -- '-Xms%s\n-Xmx%s\n' "$ELASTICSEARCH_HEAP" "$ELASTICSEARCH_HEAP"; cat "$SINKS_DIR/elasticsearch/jvm.options"; } >"$d/config/jvm.options"
  cp "$SINKS_DIR/elasticsearch/log4j2.properties" "$d/config/log4j2.properties"
  cat >"$d/config/elasticsearch.yml" <<YML
# Generated by compose/sinks-up.sh: a single test node bound to 127.0.0.1
# only, HTTP without TLS or authentication. The integ-test-zip holds the
# x-pack-security module (but no ML, geoip or other x-pack modules), which
# Elasticsearch 8 turns on by default: off here.
cluster.name: strata-sinks-es
node.name: strata-sinks-es-1
path.data: $d/data
path.logs: $d/logs
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT
discovery.type: single-node
xpack.security.enabled: false
# A shared test machine's disk can be nearly full; never mark indexes read-only.
cluster.routing.allocation.disk.threshold_enabled: false
YML
  if [[ "$(id -u)" == 0 ]]; then chown -R "$RUN_AS:$(id -g "$RUN_AS")" "$d"; fi
  # As for OpenSearch: its own session, every fd redirected, the lock fd
  # closed. CLI_JAVA_OPTS: the launcher JVM compiles with C1 only too.
  (cd "$d" && exec "${AS_USER[@]}" setsid env -u JAVA_HOME HOME="$d" ES_JAVA_HOME="$jh" ES_PATH_CONF="$d/config" \
    ES_TMPDIR="$d/tmp" ES_JAVA_OPTS="${ELASTICSEARCH_JAVA_OPTS:-}" CLI_JAVA_OPTS="-XX:TieredStopAtLevel=1" \
    "$home/bin/elasticsearch" -p "$d/elasticsearch.pid" </dev/null >"$d/elasticsearch.log" 2>&1 9>&-) &
  printf '%s\n' "$!" >"$d/pid"
  STARTED+=(elasticsearch)
  log "[$(elapsed)] started Elasticsearch $ELASTICSEARCH_VERSION (pid $!, heap $ELASTICSEARCH_HEAP) on 127.0.0.1:$ES_PORT"
}

# wait_health NAME PORT WHAT: until the cluster health of server NAME
# (OpenSearch or Elasticsearch: WHAT, for messages) is yellow or green.
wait_health() {
  local d pid deadline
  d="$(sink_dir "$1")"
  deadline=$(( $(date +%s) + TIMEOUT_S ))
  while :; do
    if curl -sf --max-time 3 "http://127.0.0.1:$2/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null |
        grep -Eq '"status":"(yellow|green)"'; then
      return 0
    fi
    pid="$(cat "$d/pid" 2>/dev/null || true)"
    pid_alive "$pid" || fail "$1" "$3 exited during start-up"
    (( $(date +%s) < deadline )) || fail "$1" "$3 did not become ready within ${TIMEOUT_S}s (SINKS_START_TIMEOUT)"
    sleep 0.25
  done
}

# ---------------------------------------------------------------- redis ----
# start_redis: no persistence (a test server), no protected-mode surprises
# (bound to 127.0.0.1 only); ready when it answers PING.
start_redis() {
  local d pid deadline
  d="$(sink_dir redis)"
  mkdir -p "$d"
  cat >"$d/redis.conf" <<EOF
# Generated by compose/sinks-up.sh: a throw-away test server.
bind 127.0.0.1
port $REDIS_PORT
daemonize no
dir $d
save ""
appendonly no
databases 16
EOF
  setsid redis-server "$d/redis.conf" </dev/null >"$d/redis.log" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$d/pid"
  STARTED+=(redis)
  deadline=$(( $(date +%s) + TIMEOUT_S ))
  until [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; do
    pid_alive "$pid" || fail redis "redis-server exited during start-up"
    (( $(date +%s) < deadline )) || fail redis "Redis did not answer PING within ${TIMEOUT_S}s"
    sleep 0.1
  done
  log "[$(elapsed)] Redis $(redis-server --version | grep -o 'v=[^ ]*' | cut -c3-) ready on 127.0.0.1:$REDIS_PORT (pid $pid)"
}

# ------------------------------------------------------------- postgres ----
# start_postgres: a fresh cluster (initdb) owned by RUN_AS. The bootstrap
# superuser is PG_USER with PG_PASSWORD (scram-sha-256 over TCP, so clients
# exercise real authentication; trust on the private Unix socket). Durability
# is off: fsync, synchronous_commit and full_page_writes cost much and buy a
# throw-away test database nothing.
start_postgres() {
  local d bin
  d="$(sink_dir postgres)"
  bin="$(pg_bindir)"
  own_dir "$d" "$d/run"
  ( umask 077; printf '%s\n' "$PG_PASSWORD" >"$d/pwfile" )
  if [[ "$(id -u)" == 0 ]]; then chown "$RUN_AS" "$d/pwfile"; fi
  log "[$(elapsed)] initdb ($("$bin/postgres" --version | awk '{print $3}'), as $RUN_AS)"
  STARTED+=(postgres)
  "${AS_USER[@]}" "$bin/initdb" -D "$d/data" -U "$PG_USER" --pwfile="$d/pwfile" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >"$d/initdb.log" 2>&1 9>&- ||
    fail postgres "initdb failed" "$d/initdb.log"
  rm -f "$d/pwfile"
  cat >>"$d/data/postgresql.conf" <<EOF

# compose/sinks-up.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$d/run'
max_connections = 100
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  # pg_ctl -w returns once the server accepts connections; the postmaster
  # runs in its own session (setsid), detached from the caller's terminal.
  "${AS_USER[@]}" setsid "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t "$TIMEOUT_S" start \
    </dev/null >>"$d/initdb.log" 2>&1 9>&- || fail postgres "PostgreSQL did not start" "$d/postgres.log"
  "${AS_USER[@]}" "$bin/psql" -X -q -h "$d/run" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE $PG_DATABASE" >>"$d/initdb.log" 2>&1 9>&- || fail postgres "could not create database $PG_DATABASE" "$d/initdb.log"
  log "[$(elapsed)] PostgreSQL ready on 127.0.0.1:$PG_PORT, database $PG_DATABASE (pid $(sink_pid postgres))"
}

# ----------------------------------------------------------------- main ----
STARTED=()

# fail NAME MESSAGE [LOG]: print the server's log, stop every server this run
# started, exit 1. Logs stay in $STATE_DIR until sinks-up/sinks-down.
fail() {
  local name="$1" msg="$2" f="${3:-}" s
  case "$name" in
    redis) f="${f:-$(sink_dir redis)/redis.log}" ;;
    postgres) f="${f:-$(sink_dir postgres)/postgres.log}" ;;
    search) f="${f:-$(sink_dir search)/opensearch.log}" ;;
    elasticsearch) f="${f:-$(sink_dir elasticsearch)/elasticsearch.log}" ;;
  esac
  tail_log "$name" "$f"
  log "error: $msg"
  for s in "${STARTED[@]}"; do stop_sink "$s" 10; done
  log "stopped what this run started; logs kept in $STATE_DIR (sinks-down.sh removes them)"
  exit 1
}

take_lock 300
mkdir -p "$STATE_DIR"
install_missing

# Reuse what runs; clear what a dead server left; refuse busy ports.
busy=()
for s in "${WANT[@]}"; do
  if [[ -n "$(sink_pid "$s")" ]]; then
    log "reusing the running $s (state: $(sink_dir "$s"))"
    continue
  fi
  rm -rf "$(sink_dir "$s")"
  case "$s" in
    redis) ports=("$REDIS_PORT") ;;
    postgres) ports=("$PG_PORT") ;;
    search) ports=("$SEARCH_PORT" "$SEARCH_TRANSPORT_PORT") ;;
    elasticsearch) ports=("$ES_PORT" "$ES_TRANSPORT_PORT") ;;
  esac
  for p in "${ports[@]}"; do port_in_use "$p" && busy+=("$p ($s)"); done
done
if (( ${#busy[@]} )); then
  die "port(s) in use: ${busy[*]}; stop whatever listens there or set REDIS_PORT / PG_PORT / SEARCH_PORT / SEARCH_TRANSPORT_PORT / ES_PORT / ES_TRANSPORT_PORT"
fi

if wants search && [[ -z "$(sink_pid search)" ]]; then start_search; fi
if wants elasticsearch && [[ -z "$(sink_pid elasticsearch)" ]]; then start_elasticsearch; fi
if wants redis && [[ -z "$(sink_pid redis)" ]]; then start_redis; fi
if wants postgres && [[ -z "$(sink_pid postgres)" ]]; then start_postgres; fi
if wants search; then
  wait_health search "$SEARCH_PORT" OpenSearch
  log "[$(elapsed)] OpenSearch ready on 127.0.0.1:$SEARCH_PORT (pid $(sink_pid search))"
fi
if wants elasticsearch; then
  wait_health elasticsearch "$ES_PORT" Elasticsearch
  log "[$(elapsed)] Elasticsearch ready on 127.0.0.1:$ES_PORT (pid $(sink_pid elasticsearch))"
fi

# The env file lists every running server (also ones an earlier call started).
env_tmp="$STATE_DIR/env.tmp.$$"
: >"$env_tmp"
for s in "${ALL_SINKS[@]}"; do
  [[ -n "$(sink_pid "$s")" ]] && env_line "$s" >>"$env_tmp"
done
mv -f "$env_tmp" "$STATE_DIR/env"
log "[$(elapsed)] ready; env lines in $STATE_DIR/env"
for s in "${WANT[@]}"; do env_line "$s"; done
