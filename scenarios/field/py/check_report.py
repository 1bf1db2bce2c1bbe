#!/usr/bin/env python3
"""A killpoint checker for report.json: the file a reader finds must be a whole report,
the previous one (version 1) or the new one (version 2, 4000 rows), never a torn one.

It reads the case's outcome (JSON) on stdin to say which strike it was judging, and
exits 0 when the promise held, 1 when it was broken, printing why.
"""
import json
import sys

outcome = json.load(sys.stdin)
delivered = [s for s in outcome["strikes"] if s["sent_at"] is not None]
after = (
    "after %s sent at %s ms" % (delivered[0]["signal"], delivered[0]["sent_at"])
    if delivered
    else "with no strike delivered"
)
try:
    with open("report.json", "rb") as f:
        data = f.read()
except FileNotFoundError:
    print("report.json is gone %s: a reader finds no report at all" % after)
    sys.exit(1)
try:
    report = json.loads(data)
except ValueError as e:
    print("report.json does not parse %s: %s (%d bytes)" % (after, e, len(data)))
    sys.exit(1)
if report.get("version") == 1 or (report.get("version") == 2 and len(report.get("rows", [])) == 4000):
    sys.exit(0)
print("report.json is neither the previous report nor the new one %s" % after)
sys.exit(1)
