#!/usr/bin/env python3
"""The Debian packages the scenarios' `[requires]` tables name whose programs are not on
the PATH, one per line: what `.ci/run` installs before the field suite runs.

Usage: scripts/field-packages.py [SCENARIOS_DIR]   (default: scenarios/ beside this script)
"""
import pathlib
import shutil
import sys
import tomllib

root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent / "scenarios"
missing = set()
for path in sorted(root.rglob("*.toml")):
    if path.name == "Cargo.toml" or "target" in path.parts:
        continue
    with path.open("rb") as f:
        requires = tomllib.load(f).get("requires", {})
    for program, package in requires.items():
        if shutil.which(program) is None:
            missing.add(package)
for package in sorted(missing):
    print(package)
