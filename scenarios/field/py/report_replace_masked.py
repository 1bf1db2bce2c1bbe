#!/usr/bin/env python3
"""Write a JSON report atomically: a temp file in the destination's directory, fsync,
os.replace. The usual recipe; it cleans the temp file up on any exception raised inside
the try block, and creates the temp file with SIGINT/SIGTERM blocked so that no
KeyboardInterrupt/SystemExit can fall between its creation and the cleanup knowing it.
With --handle-signals, SIGTERM is turned into SystemExit(143) and KeyboardInterrupt
into exit 130, so that the cleanup also runs when the process is asked to stop."""
import json
import os
import signal
import sys
import tempfile


def build_report():
    regions = ["north", "south", "east", "west", "central"]
    rows = []
    for i in range(4000):
        rows.append({
            "id": i,
            "region": regions[i % len(regions)],
            "units": (i * 37) % 101,
            "revenue_cents": (i * 7919) % 100003,
            "note": "order %06d shipped" % i,
        })
    totals = {}
    for r in rows:
        totals[r["region"]] = totals.get(r["region"], 0) + r["revenue_cents"]
    return {"version": 2, "totals": totals, "rows": rows}


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def write_atomic(path, obj):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        # Create the temp file with the stop signals blocked, so that no exception can
        # arrive between its creation and `tmp` naming it.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report.", suffix=".tmp")
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise


def on_term(signum, frame):
    sys.exit(128 + signum)


def main():
    args = sys.argv[1:]
    handle = "--handle-signals" in args
    args = [a for a in args if a != "--handle-signals"]
    path = args[0] if args else "report.json"
    if handle:
        signal.signal(signal.SIGTERM, on_term)
    # The closing message is inside the try too: a SIGINT that lands while it is printed
    # (the work is done by then) must end the program as any other SIGINT does, not in
    # a traceback.
    try:
        write_atomic(path, build_report())
        print("wrote", path)
    except KeyboardInterrupt:
        if not handle:
            raise
        sys.exit(130)


if __name__ == "__main__":
    main()
