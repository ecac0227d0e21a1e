# shellcheck shell=bash
# Shared code for compose/sinks-up.sh and compose/sinks-down.sh. Sourced,
# never executed. Callers set `set -euo pipefail` and COMPOSE_DIR first.
#
# One private instance of each server the view sinks write to, for tests:
#   redis     127.0.0.1:$REDIS_PORT (6380)
#   postgres  127.0.0.1:$PG_PORT (5433), database strata_test
#   search    OpenSearch on 127.0.0.1:$SEARCH_PORT (9201, transport 9301)
#   elasticsearch  Elasticsearch on 127.0.0.1:$ES_PORT (9203, transport 9303)
# Each has a directory under $STATE_DIR holding its config, data, log and pid.

SINKS_DIR="$COMPOSE_DIR/sinks"
STATE_DIR="${STRATA_SINKS_STATE:-/tmp/strata-sinks}"
CACHE_DIR="${STRATA_SINKS_CACHE:-$SINKS_DIR/target}"
ALL_SINKS=(redis postgres search elasticsearch)

REDIS_PORT="${REDIS_PORT:-6380}"
PG_PORT="${PG_PORT:-5433}"
PG_USER="${PG_USER:-strata}"
PG_PASSWORD="${PG_PASSWORD:-strata}"
PG_DATABASE="${PG_DATABASE:-strata_test}"
SEARCH_PORT="${SEARCH_PORT:-9201}"
SEARCH_TRANSPORT_PORT="${SEARCH_TRANSPORT_PORT:-9301}"
OPENSEARCH_VERSION="${OPENSEARCH_VERSION:-2.19.6}"
OPENSEARCH_HEAP="${OPENSEARCH_HEAP:-512m}"
ES_PORT="${ES_PORT:-9203}"
ES_TRANSPORT_PORT="${ES_TRANSPORT_PORT:-9303}"
ELASTICSEARCH_VERSION="${ELASTICSEARCH_VERSION:-8.19.21}"
ELASTICSEARCH_HEAP="${ELASTICSEARCH_HEAP:-512m}"

log() { printf 'sinks: %s\n' "$*" >&2; }
die() { printf 'sinks: error: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }

sink_dir() { printf '%s/%s' "$STATE_DIR" "$1"; }

# pid_alive PID: running and not a zombie (PID 1 here reaps orphans lazily).
pid_alive() {
  local pid="$1" stat
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != "Z" ]]
}

# pid_cmd_has PID STRING: PID is alive and its command line contains STRING,
# so a reused pid is not taken for our server.
pid_cmd_has() {
  local cmd
  pid_alive "$1" || return 1
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *"$2"* ]]
}

# sink_pid NAME: pid of our server NAME if it runs, else empty. Each server's
# command line names a path inside its own state directory.
sink_pid() {
  local d pid=""
  d="$(sink_dir "$1")"
  case "$1" in
    redis)
      # Redis rewrites its command line to "redis-server 127.0.0.1:<port>".
      pid="$(cat "$d/pid" 2>/dev/null || true)"
      pid_cmd_has "$pid" "redis-server" && [[ -f "$d/redis.conf" ]] || pid="" ;;
    postgres)
      # postmaster.pid's first line; the postmaster's command line has -D <data>.
      pid="$(head -n1 "$d/data/postmaster.pid" 2>/dev/null || true)"
      pid_cmd_has "$pid" "$d/data" || pid="" ;;
    search)
      # bin/opensearch -p <pidfile>: the launcher and the JVM both carry it.
      pid="$(cat "$d/pid" 2>/dev/null || true)"
      pid_cmd_has "$pid" "$d/opensearch.pid" || pid="" ;;
    elasticsearch)
      # The launcher JVM (bin/elasticsearch -p <pidfile>), which runs the
      # server JVM as its child and stops it on SIGTERM.
      pid="$(cat "$d/pid" 2>/dev/null || true)"
      pid_cmd_has "$pid" "$d/elasticsearch.pid" || pid="" ;;
  esac
  printf '%s' "$pid"
}

# take_lock TIMEOUT_S: serialise sinks-up/sinks-down (fd 9, released at exit).
take_lock() {
  mkdir -p "$(dirname "$STATE_DIR")"
  exec 9>"${STATE_DIR%/}.lock"
  command -v flock >/dev/null 2>&1 || return 0
  flock -w "$1" 9 || die "another sinks-up/sinks-down holds ${STATE_DIR%/}.lock for more than $1s"
}

# port_in_use PORT: something listens on PORT.
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
    return
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# PostgreSQL, OpenSearch and Elasticsearch refuse to run as root. As root, they run as
# SINKS_USER (default nobody: it exists everywhere and owns nothing else);
# as anyone else, as that user.
if [[ "$(id -u)" == 0 ]]; then
  RUN_AS="${SINKS_USER:-nobody}"
else
  RUN_AS="$(id -un)"
fi

# AS_USER: the command prefix that runs a command as RUN_AS. It execs (no
# extra process in between), so `$!` of a background "${AS_USER[@]}" CMD is
# the pid CMD ends up with.
AS_USER=()
if [[ "$(id -u)" == 0 && "$RUN_AS" != root ]]; then
  AS_USER=(setpriv "--reuid=$RUN_AS" "--regid=$(id -g "$RUN_AS" 2>/dev/null || echo "$RUN_AS")" --clear-groups --)
fi

# own_dir DIR...: create DIR(s) owned by RUN_AS.
own_dir() {
  mkdir -p "$@"
  if [[ "$(id -u)" == 0 ]]; then chown "$RUN_AS:$(id -g "$RUN_AS")" "$@"; fi
}

# pg_bindir: the directory of initdb/pg_ctl/postgres. PG_BIN wins; then the
# newest Debian /usr/lib/postgresql/<N>/bin; then initdb on PATH.
pg_bindir() {
  local d
  if [[ -n "${PG_BIN:-}" ]]; then printf '%s' "$PG_BIN"; return; fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4n | tail -n1)"
  if [[ -n "$d" && -x "$d/initdb" ]]; then printf '%s' "$d"; return; fi
  d="$(command -v initdb 2>/dev/null || true)"
  [[ -n "$d" ]] && dirname "$(readlink -f "$d")"
}

# env_line NAME: the STRATA_TEST_* line for a running server.
env_line() {
  case "$1" in
    redis) printf 'STRATA_TEST_REDIS=redis://127.0.0.1:%s/0\n' "$REDIS_PORT" ;;
    postgres) printf 'STRATA_TEST_POSTGRES=postgres://%s:%s@127.0.0.1:%s/%s?sslmode=disable\n' "$PG_USER" "$PG_PASSWORD" "$PG_PORT" "$PG_DATABASE" ;;
    search) printf 'STRATA_TEST_SEARCH=http://127.0.0.1:%s\n' "$SEARCH_PORT" ;;
    elasticsearch) printf 'STRATA_TEST_ELASTICSEARCH=http://127.0.0.1:%s\n' "$ES_PORT" ;;
  esac
}

# stop_pid SIGNAL TIMEOUT_S PID: signal PID, wait for it to exit, SIGKILL
# after TIMEOUT_S. Returns 1 when it needed SIGKILL.
stop_pid() {
  local sig="$1" timeout="$2" pid="$3" deadline
  kill "-$sig" "$pid" 2>/dev/null || true
  deadline=$(( $(date +%s) + timeout ))
  while pid_alive "$pid"; do
    if (( $(date +%s) >= deadline )); then
      log "pid $pid still running after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(( $(date +%s) + 10 ))
      while pid_alive "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
      return 1
    fi
    sleep 0.1
  done
}

# stop_sink NAME TIMEOUT_S: stop our server NAME if it runs.
stop_sink() {
  local pid server
  pid="$(sink_pid "$1")"
  [[ -n "$pid" ]] || return 0
  log "stopping $1 (pid $pid)"
  case "$1" in
    postgres) stop_pid INT "$2" "$pid" || true ;; # SIGINT: PostgreSQL's fast shutdown
    elasticsearch)
      # SIGTERM to the launcher stops the server JVM and then the launcher.
      # Had the launcher to be killed, the server (its pid file's pid, whose
      # command line names our tmp dir) is stopped on its own.
      server="$(cat "$(sink_dir "$1")/elasticsearch.pid" 2>/dev/null || true)"
      stop_pid TERM "$2" "$pid" || true
      if pid_cmd_has "$server" "$(sink_dir "$1")/tmp"; then stop_pid TERM "$2" "$server" || true; fi ;;
    *) stop_pid TERM "$2" "$pid" || true ;;
  esac
}

# tail_log NAME FILE: the last 40 lines of FILE, to stderr.
tail_log() {
  [[ -s "$2" ]] || return 0
  printf '\n===== %s: last 40 lines of %s =====\n' "$1" "$2" >&2
  tail -n 40 "$2" >&2
}
