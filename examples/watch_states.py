#!/usr/bin/env python3
"""Print every slot's state changes from a running missiond (the /events stream).

    pip install websockets
    python3 examples/watch_states.py [--until-state confirming]

One line per change: `agent-1: thinking -> confirming (permission: Do you want to proceed?)`.
With --until-state S it exits (status 0) the first time any slot enters S, which makes it a
building block for scripts ("wake me when an agent needs me").
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from watch_tasks import connect, token  # noqa: E402  (same discovery of URL and token)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--until-state", help="exit when a slot enters this state")
    args = parser.parse_args()
    base = os.environ.get("MISSIOND_URL", "http://127.0.0.1:9120").rstrip("/")
    try:
        ws = connect("ws" + base[len("http"):] + "/events", additional_headers={"Authorization": f"Bearer {token()}"})
    except OSError as e:
        sys.exit(f"cannot reach the daemon at {base} ({e}): is `missiond serve` running?")
    with ws:
        for frame in ws:
            event = json.loads(frame)
            kind = event.get("type")
            if kind == "slots":
                for slot in event["slots"]:
                    print(f"{slot['id']}: {slot['state']}", flush=True)
                    if slot["state"] == args.until_state:
                        return
            elif kind == "slot_state":
                dialog = (event.get("detail") or {}).get("dialog")
                extra = f" ({dialog['kind']}: {dialog['question']})" if dialog else ""
                print(f"{event['slotId']}: {event.get('prevState')} -> {event['state']}{extra}", flush=True)
                if event["state"] == args.until_state:
                    return
            elif kind in ("slot_created", "slot_removed", "slot_exited"):
                slot_id = event.get("slotId") or event.get("slot", {}).get("id")
                print(f"{slot_id}: {kind[len('slot_'):]}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
