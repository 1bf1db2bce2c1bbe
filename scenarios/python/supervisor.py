"""supervisor.py: the supervisor of child processes pattern (PATTERNS.md §5) in Python.

Starts --children copies of itself as workers (subprocess). Each prints `child I beat K`
every --beat seconds for --beats beats and exits 0; on SIGTERM it drains for --drain
seconds and exits 0. The parent polls them every 5 ms; when all have finished it exits 0.
On SIGTERM or SIGINT it forwards SIGTERM to every child, then waits for all of them under
one shared deadline (--grace), kills the stragglers and exits 14: the drains overlap.

Planted bugs (--bug NAME), each the correct code with one thing wrong:
- stacked: signals and waits for the children one at a time (`wait(timeout=grace)` each),
  so their drains add up.
- no-forward: exits on a signal without telling the children, which run on.
"""

import signal
import sys
import threading

from shutdown import exit_with, install_handlers

stop = threading.Event()
install_handlers(lambda signum, frame: stop.set())  # first, so no stop is lost to a slow start

import argparse  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

STOPPED = 14
BUGS = ["stacked", "no-forward"]
WATCH = 0.005


def child(index, args):
    for beat in range(1, args.beats + 1):
        if stop.is_set():
            time.sleep(args.drain)
            return 0
        print(f"child {index} beat {beat}", flush=True)
        time.sleep(args.beat)
    return 0


def stop_all(children, grace):
    for process in children:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in children:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def supervise(args):
    command = [sys.executable, __file__, "--beats", str(args.beats), "--beat", str(args.beat),
               "--drain", str(args.drain)]
    children = [subprocess.Popen(command + ["--child", str(i)]) for i in range(1, args.children + 1)]
    while True:
        if stop.is_set():
            print(f"supervisor: stopping {len(children)} children", file=sys.stderr)
            if args.bug == "stacked":
                for process in children:
                    stop_all([process], args.grace)
            elif args.bug != "no-forward":
                stop_all(children, args.grace)
            return STOPPED
        statuses = [process.poll() for process in children]
        crashed = [s for s in statuses if s not in (None, 0)]
        if crashed:
            print(f"supervisor: a child died on its own ({crashed[0]}); stopping the rest",
                  file=sys.stderr)
            stop_all(children, args.grace)
            return 1
        if all(s == 0 for s in statuses):
            return 0
        time.sleep(WATCH)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--beats", type=int, default=100)
    parser.add_argument("--beat", type=float, default=0.01)
    parser.add_argument("--drain", type=float, default=0.2)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--child", type=int)
    parser.add_argument("--bug", choices=BUGS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args)
    return supervise(args)


if __name__ == "__main__":
    exit_with(main())
