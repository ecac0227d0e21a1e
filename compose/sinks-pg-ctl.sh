#!/usr/bin/env bash
# compose/sinks-pg-ctl.sh stop|start: stops or starts again the private
# PostgreSQL of compose/sinks-up.sh, keeping its data: how the sink crash
# test (cmd/strata TestPostgresSinkCrash) takes the database away for a
# while. STRATA_TEST_POSTGRES_STOP / _START name these two commands.
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=sinks/lib.sh
source "$COMPOSE_DIR/sinks/lib.sh"

d="$(sink_dir postgres)"
[[ -d "$d/data" ]] || die "no PostgreSQL of sinks-up.sh in $d: run compose/sinks-up.sh postgres first"
bin="$(pg_bindir)"
case "${1:-}" in
  stop)  "${AS_USER[@]}" "$bin/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null ;;
  start) "${AS_USER[@]}" setsid "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 60 start </dev/null >/dev/null 2>&1 ||
           die "PostgreSQL did not start again (see $d/postgres.log)" ;;
  *) die "usage: $0 stop|start" ;;
esac
log "PostgreSQL ${1}ed"
