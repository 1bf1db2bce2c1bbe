"""batch_runner.py: the checkpointing batch runner pattern (PATTERNS.md §4) in Python.

Runs --units units (each takes --unit-time seconds and writes RESULTS/unit-N.txt) and
reports each with `DONE unit=N`. SIGTERM and SIGINT only set an event, which the loop
checks before every unit. A `finally` saves the checkpoint — atomically: temp file, fsync,
rename — with the units done and status `complete` or `interrupted`, so after a graceful
stop every reported unit is in it; the run exits 14 (interrupted) or 0. --resume runs only
the units the checkpoint does not list.

Planted bugs (--bug NAME), each the correct code with one thing wrong:
- no-finally: the checkpoint is saved after the loop, not in a `finally`; a stop leaves by
  `sys.exit(14)` from inside the loop, and every reported unit is lost.
- keyboard-interrupt: relies on KeyboardInterrupt to stop: SIGINT works, but SIGTERM has no
  handler and kills the run on the spot, with no checkpoint.
"""

import sys
import threading

from shutdown import exit_with, install_handlers

stop = threading.Event()
BUGS = ["no-finally", "keyboard-interrupt"]
# Handlers before anything else, so a stop is never lost to a slow start. The
# keyboard-interrupt bug keeps Python's defaults.
if "keyboard-interrupt" not in sys.argv:
    install_handlers(lambda signum, frame: stop.set())

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

STOPPED = 14


def save(path, status, units, done):
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as file:
        json.dump({"status": status, "units": units, "done": done}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)["done"]
    except FileNotFoundError:
        return []


def work(results, unit, unit_time):
    time.sleep(unit_time)
    with open(os.path.join(results, f"unit-{unit}.txt"), "w", encoding="utf-8") as file:
        file.write(f"unit {unit}: {unit * unit}\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--unit-time", type=float, default=0.005)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--bug", choices=BUGS)
    args = parser.parse_args()
    os.makedirs(args.results, exist_ok=True)
    done = load(args.checkpoint) if args.resume else []
    todo = [unit for unit in range(1, args.units + 1) if unit not in done]

    if args.bug == "no-finally":
        for unit in todo:
            if stop.is_set():
                sys.exit(STOPPED)
            work(args.results, unit, args.unit_time)
            done.append(unit)
            print(f"DONE unit={unit}", flush=True)
        save(args.checkpoint, "complete", args.units, done)
        return 0

    status = "interrupted"
    try:
        for unit in todo:
            if stop.is_set():
                break
            work(args.results, unit, args.unit_time)
            done.append(unit)
            print(f"DONE unit={unit}", flush=True)
        else:
            status = "complete"
    except KeyboardInterrupt:
        pass  # the keyboard-interrupt bug's way of stopping
    finally:
        save(args.checkpoint, status, args.units, done)
    if status == "complete":
        return 0
    print(f"batch_runner: interrupted after {len(done)} of {args.units} units", file=sys.stderr)
    return STOPPED


if __name__ == "__main__":
    exit_with(main())
