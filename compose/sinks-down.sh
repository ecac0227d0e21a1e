#!/usr/bin/env bash
# Stop the servers started by sinks-up.sh and delete their data and state.
#
#   compose/sinks-down.sh [redis] [postgres] [search] [elasticsearch]   (default: all four)
#
# SIGTERM (PostgreSQL: SIGINT, its fast shutdown) first, SIGKILL after
# SINKS_STOP_TIMEOUT seconds (default 15). Succeeds when nothing runs.
# The unpacked distributions in compose/sinks/target stay (the cache).
set -euo pipefail

COMPOSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=sinks/lib.sh
source "$COMPOSE_DIR/sinks/lib.sh"

TIMEOUT_S="${SINKS_STOP_TIMEOUT:-15}"
[[ "$TIMEOUT_S" =~ ^[0-9]+$ ]] || die "SINKS_STOP_TIMEOUT must be whole seconds, got '$TIMEOUT_S'"
WANT=("$@")
(( ${#WANT[@]} )) || WANT=("${ALL_SINKS[@]}")
for s in "${WANT[@]}"; do
  [[ " ${ALL_SINKS[*]} " == *" $s "* ]] || die "unknown server '$s': choose from ${ALL_SINKS[*]}"
done

if [[ ! -d "$STATE_DIR" ]]; then
  log "nothing to stop (no state in $STATE_DIR)"
  exit 0
fi

take_lock 60

for s in "${WANT[@]}"; do
  if [[ -z "$(sink_pid "$s")" && -d "$(sink_dir "$s")" ]]; then log "$s is not running"; fi
  stop_sink "$s" "$TIMEOUT_S"
  rm -rf "$(sink_dir "$s")"
done

left=()
for s in "${ALL_SINKS[@]}"; do [[ -n "$(sink_pid "$s")" ]] && left+=("$s"); done
if (( ${#left[@]} )); then
  : >"$STATE_DIR/env.tmp.$$"
  for s in "${left[@]}"; do env_line "$s" >>"$STATE_DIR/env.tmp.$$"; done
  mv -f "$STATE_DIR/env.tmp.$$" "$STATE_DIR/env"
  log "down: ${WANT[*]} (still running: ${left[*]})"
else
  rm -rf "$STATE_DIR"
  log "down"
fi
