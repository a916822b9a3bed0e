"""Plays a recorded terminal session back in a slot, stopping at each mark.

    python3 replay.py RECORDING.bin OFFSET...

Writes bytes [0, OFFSET) of the recording, then waits for Ctrl-] (0x1d) on its input before
going on to the next offset; everything else it reads (the daemon's answers to the terminal
queries in the recording) is ignored. After the last mark it writes the rest and waits for one
more Ctrl-] before exiting, so the slot stays up while the test looks at it.
"""
import os
import sys
import tty

data = open(sys.argv[1], "rb").read()
offsets = [int(x) for x in sys.argv[2:]] + [len(data)]
tty.setraw(0)  # exact bytes out, no echo of what comes in


def wait_for_go():
    while True:
        got = os.read(0, 4096)
        if not got or b"\x1d" in got:
            return


pos = 0
for offset in offsets:
    while pos < offset:
        pos += os.write(1, data[pos:offset])
    wait_for_go()
