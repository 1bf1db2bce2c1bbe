#!/usr/bin/env python3
"""Measures, for every planted-bug scenario of the zoo, how many cases killpoint needs to
catch the bug: the median over ten master seeds (1 to 10) at the scenario's default case
count, without shrinking and without the regressions file. Prints a Markdown table.

Usage: python3 scripts/zoo-detection.py [SCENARIO.toml ...]
(run from the repository root; it builds killpoint with `cargo build --release` first)
"""

import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import tomllib

SEEDS = range(1, 11)
ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    files = [pathlib.Path(f) for f in sys.argv[1:]] or sorted((ROOT / "scenarios").glob("*.toml"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "killpoint"], cwd=ROOT, check=True)
    killpoint = ROOT / "target" / "release" / "killpoint"
    print("| scenario | invariant | cases to detection, median (min–max) over 10 seeds | caught |")
    print("|---|---|---|---|")
    for file in files:
        scenario = tomllib.loads(file.read_text())
        if "violation" not in scenario.get("expect", {}):
            continue
        found = []
        for seed in SEEDS:
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                subprocess.run(
                    [killpoint, "run", file, "--seed", str(seed), "--json", out.name,
                     "--no-regressions", "--shrink-iterations", "0"],
                    cwd=ROOT, capture_output=True,
                )
                report = json.load(open(out.name))["scenarios"][0]
            failure = report.get("failure")
            if report["result"]["result"] == "caught-as-expected" and failure:
                found.append(failure["case_index"] + 1)
        names = scenario["expect"]["violation"]
        names = names if isinstance(names, list) else [names]
        cell = (f"{statistics.median(found):g} ({min(found)}–{max(found)})" if found else "—")
        print(f"| `{file.name}` | {', '.join(names)} | {cell} | {len(found)}/10 |", flush=True)


if __name__ == "__main__":
    main()
