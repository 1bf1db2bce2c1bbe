#!/usr/bin/env python3
"""Write a JSON report of per-region sales totals: the way it is commonly written,
straight into the destination with open(path, 'w')."""
import json
import sys


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


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "report.json"
    report = build_report()
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
