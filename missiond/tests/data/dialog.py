#!/usr/bin/env python3
"""A Claude Code-like permission dialog for the answer tests, with keyboards of several kinds.

Draws "Do you want to create notes.txt?" with three numbered options below a rule (as Claude
Code does), reads keys in raw mode and appends what it did to RECORD_FILE, one line each:
`moved N` when the selection moved to option N, `submitted N` on Enter, `escape` on Escape.
After an answer it draws an empty prompt box (the slot reads idle) and keeps reading.

KEYBOARD says how keys are read:
  normal          arrows move the selection, Enter submits it;
  ignore-arrows   arrows do nothing (a release whose keys the daemon cannot drive);
  burst-is-enter  a read holding more than one key is taken as Enter alone (Claude Code
                  2.1.150-2.1.200 read `ESC[B ESC[B CR` sent in one write that way);
OPTIONS is `yes-always-no` (default) or `yes-always-free` (no "No" option: Claude Code 2.0.x,
whose third option is free text and whose footer offers Escape).

usage: dialog.py RECORD_FILE KEYBOARD [OPTIONS]
"""
import os
import sys
import termios
import tty

LABELS = {
    "yes-always-no": ["Yes", "Yes, allow all edits during this session (shift+tab)", "No"],
    "yes-always-free": ["Yes", "Yes, allow all edits during this session (shift+tab)",
                        "Type here to tell Claude what to do differently"],
}


def draw(out, labels, selected):
    rows = ["\x1b[2J\x1b[H", "─" * 60, " Create file", " notes.txt", "",
            " Do you want to create notes.txt?"]
    for i, label in enumerate(labels):
        marker = "❯" if i == selected else " "
        rows.append(f" {marker} {i + 1}. {label}")
    rows += ["", " Esc to cancel · Tab to amend"]
    out.write("\r\n".join(rows).encode())
    out.flush()


def prompt_box(out):
    out.write(("\x1b[2J\x1b[H" + "─" * 60 + "\r\n❯ \r\n" + "─" * 60 + "\x1b[2;3H").encode())
    out.flush()


def keys(chunk):
    """Splits a read into keys: arrows, Enter, Escape, anything else byte by byte."""
    i = 0
    while i < len(chunk):
        if chunk[i:i + 3] in (b"\x1b[A", b"\x1b[B"):
            yield chunk[i:i + 3]
            i += 3
        else:
            yield chunk[i:i + 1]
            i += 1


def main() -> int:
    record_path, keyboard = sys.argv[1], sys.argv[2]
    labels = LABELS[sys.argv[3] if len(sys.argv) > 3 else "yes-always-no"]
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    out = sys.stdout.buffer
    selected, answered = 0, False
    try:
        draw(out, labels, selected)
        with open(record_path, "a", buffering=1) as record:
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return 0
                if answered:
                    continue
                pressed = list(keys(chunk))
                if keyboard == "burst-is-enter" and len(pressed) > 1:
                    pressed = [b"\r"]
                for key in pressed:
                    if key in (b"\x1b[A", b"\x1b[B") and keyboard != "ignore-arrows":
                        step = 1 if key == b"\x1b[B" else -1
                        selected = max(0, min(len(labels) - 1, selected + step))
                        record.write(f"moved {selected + 1}\n")
                        draw(out, labels, selected)
                    elif key == b"\r":
                        record.write(f"submitted {selected + 1}\n")
                        answered = True
                        prompt_box(out)
                        break
                    elif key == b"\x1b":
                        record.write("escape\n")
                        answered = True
                        prompt_box(out)
                        break
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


if __name__ == "__main__":
    sys.exit(main())
