#!/usr/bin/env python3
"""Print Claude Code task events from a running missiond, as they happen.

    pip install websockets          # once
    python3 examples/watch_tasks.py [--max-events N] [--json]

Finds the daemon like the CLI does: MISSIOND_URL (default http://127.0.0.1:9120) and
MISSIOND_TOKEN, else the token file ($XDG_STATE_HOME/missiond/token or
~/.local/state/missiond/token). Connects to the /tasks WebSocket, prints a summary of the
overview it gets first, then one line per event:

    overview: 2 sessions (1 active), 3 pending, 1 in progress, 4 completed
    started   [agent-1] myproject: Write the parser
    completed [agent-1] myproject: Write the parser
    changed   [agent-1] myproject: +1 -0, 1 status change(s)
"""
import argparse
import json
import os
import pathlib
import sys

try:
    from websockets.sync.client import connect
except ImportError:
    sys.exit("watch_tasks.py needs the websockets package: pip install websockets")


def token():
    if os.environ.get("MISSIOND_TOKEN"):
        return os.environ["MISSIOND_TOKEN"].strip()
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    path = pathlib.Path(state) / "missiond" / "token"
    try:
        return path.read_text().strip()
    except OSError:
        sys.exit(f"no token: set MISSIOND_TOKEN or start the daemon once to create {path}")


def describe(event):
    kind, p = event.get("type", "?"), event.get("payload", {})
    where = f"[{p['slotId']}] " if p.get("slotId") else ""
    project = p.get("projectName") or p.get("sessionId", "?")
    if kind == "cc_tasks_overview":
        s = p.get("tasksByStatus", {})
        return (f"overview: {p.get('totalSessions', 0)} sessions ({p.get('activeSessions', 0)} active), "
                f"{s.get('pending', 0)} pending, {s.get('inProgress', 0)} in progress, {s.get('completed', 0)} completed")
    if kind in ("cc_task_started", "cc_task_completed"):
        word = "started  " if kind == "cc_task_started" else "completed"
        return f"{word} {where}{project}: {p.get('task', {}).get('subject', '?')}"
    if kind == "cc_tasks_changed":
        return (f"changed   {where}{project}: +{len(p.get('added', []))} -{len(p.get('removed', []))}, "
                f"{len(p.get('statusChanged', []))} status change(s)")
    if kind in ("cc_session_active", "cc_session_inactive"):
        return f"{'active  ' if kind == 'cc_session_active' else 'inactive'}  {where}{project}"
    return json.dumps(event)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-events", type=int, default=0, help="stop after N events (0: run forever)")
    parser.add_argument("--json", action="store_true", help="print the raw events, one JSON object per line")
    args = parser.parse_args()
    base = os.environ.get("MISSIOND_URL", "http://127.0.0.1:9120").rstrip("/")
    url = "ws" + base[len("http"):] + "/tasks"
    try:
        ws = connect(url, additional_headers={"Authorization": f"Bearer {token()}"})
    except OSError as e:
        sys.exit(f"cannot reach the daemon at {base} ({e}): is `missiond serve` running?")
    seen = 0
    with ws:
        for frame in ws:
            event = json.loads(frame)
            print(json.dumps(event) if args.json else describe(event), flush=True)
            seen += 1
            if args.max_events and seen >= args.max_events:
                return


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
