#!/usr/bin/env python3
"""Write a JSON report atomically: a temp file in the destination's directory, fsync,
os.replace. The usual recipe; it cleans the temp file up on any exception raised inside
the try block (not one raised inside mkstemp or before the try is entered).
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


def write_atomic(path, obj):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
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
    try:
        write_atomic(path, build_report())
    except KeyboardInterrupt:
        if not handle:
            raise
        sys.exit(130)
    print("wrote", path)


if __name__ == "__main__":
    main()
