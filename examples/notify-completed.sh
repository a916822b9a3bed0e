#!/usr/bin/env bash
# Prints one line whenever a Claude Code task is completed in any slot, using the CLI's JSON
# event stream and jq. Pipe it into notify-send, a chat hook, or a log.
#
#   examples/notify-completed.sh            # runs until interrupted
#   examples/notify-completed.sh 3          # stops after 3 completions
#
# Needs: missiond on PATH (or MISSIOND=path/to/missiond), jq, a running daemon (MISSIOND_URL,
# MISSIOND_TOKEN or the token file, as for every client verb).
set -euo pipefail
missiond="${MISSIOND:-missiond}"
limit="${1:-0}"
command -v jq >/dev/null || { echo "notify-completed.sh needs jq (apt-get install jq)" >&2; exit 1; }

# The event stream runs as a coprocess so that stopping after N lines ends it too.
coproc FOLLOW { exec "$missiond" tasks --follow --json; }
trap 'kill "$FOLLOW_PID" 2>/dev/null || true' EXIT

count=0
while IFS= read -r event <&"${FOLLOW[0]}"; do
  line=$(jq -r 'select(.type == "cc_task_completed")
      | .payload | "done: \(.task.subject) (\(.slotId // .projectName))"' <<<"$event")
  [ -n "$line" ] || continue
  printf '%s\n' "$line"
  count=$((count + 1))
  if [ "$limit" -gt 0 ] && [ "$count" -ge "$limit" ]; then
    exit 0
  fi
done
