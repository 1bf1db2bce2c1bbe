"""flush_store.py: the flush-loop store pattern (PATTERNS.md §2) in Python, stdlib only.

The main thread puts --writes records into an in-memory buffer and acknowledges each with
`ACK <id>` on stdout (under the store's lock, so acknowledgements are in order). A flusher
thread writes the buffer to --store, one write per record, then fsyncs, every --interval.
SIGTERM and SIGINT only set an event; the main loop sees it and leaves, and a `finally`
stops the store: the flusher wakes at once (Event.wait, not sleep), flushes what is left and
is joined. Every acknowledged record is then on disk; the run exits 14 (stopped) or 0.

Planted bugs (--bug NAME), each the correct code with one thing wrong:
- handler-print: the handler prints "stopping" (flushed, so it shows at once) before
  setting the event. Python runs the handler between bytecodes of the main thread, and
  also inside a flush of stdout's buffered writer, right after its write(2) returns; when
  it lands there, its print re-enters that writer and raises
  "RuntimeError: reentrant call inside <_io.BufferedWriter name='<stdout>'>": a crash with
  a traceback instead of a clean stop.
- handler-flush: the handler flushes the store itself. When it runs while the main thread
  holds the store's lock (putting a record), it waits for that lock forever.
- sleep-stop: the flusher sleeps a whole interval and only then looks at the stop event,
  so a stop waits out the interval.
- seal-in-handler: the handler seals the store itself ("so nothing is lost"), and the
  `finally` seals it again on the way out: the `END` trailer and the `FLUSHED` line
  appear twice. Teardown that is not idempotent.

Probe marks (killpoint_probe): `ack N` as record N is acknowledged, under the store's
lock, in the main thread.

stop() is idempotent, and seals the store once: a trailer line `END <records>` and a
`FLUSHED <records>` line on stdout, the side effects a teardown must make exactly once
however many signals arrive.
"""

import argparse
import os
import signal
import sys
import threading
import time

import killpoint_probe
from shutdown import exit_with, install_handlers

STOPPED = 14
BUGS = ["handler-print", "handler-flush", "sleep-stop", "seal-in-handler"]


class Store:
    def __init__(self, path, interval, bug):
        self.lock = threading.Lock()
        self.buffer = []
        self.file = open(path, "a", encoding="utf-8")
        self.interval = interval
        self.bug = bug
        self.stopping = threading.Event()
        self.stopped = False
        self.written = 0
        self.flusher = threading.Thread(target=self._loop, name="flusher")
        self.flusher.start()

    def put(self, record_id):
        with self.lock:
            self.buffer.append(f"{record_id} {'x' * 48}\n")
            print(f"ACK {record_id}", flush=True)
            # A probe point in the main thread, where Python runs signal handlers: a
            # strike at `ack N` runs the handler right here, with the lock held.
            killpoint_probe.mark(f"ack {record_id}")

    def flush(self):
        with self.lock:
            pending, self.buffer = self.buffer, []
        if not pending:
            return
        for record in pending:
            self.file.write(record)
            self.file.flush()
            self.written += 1
        os.fsync(self.file.fileno())

    def _loop(self):
        while True:
            if self.bug == "sleep-stop":
                time.sleep(self.interval)
                stopping = self.stopping.is_set()
            else:
                stopping = self.stopping.wait(self.interval)
            try:
                self.flush()
            except OSError as error:
                print(f"flush_store: flush failed, will retry: {error}", file=sys.stderr)
            if stopping:
                return

    def stop(self):
        """Stops the flusher, which flushes what is left, and seals the store. Idempotent:
        a second call (another signal, the exit path after the signal path) does nothing."""
        if self.stopped:
            return
        self.stopped = True
        self.stopping.set()
        self.flusher.join()
        self.seal()

    def seal(self):
        """The last side effects of a teardown: the trailer and the FLUSHED line."""
        self.file.write(f"END {self.written}\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        # Straight to the descriptor: a stop run from a handler must not re-enter stdout's
        # buffered writer (that is handler-print's bug, not this one's).
        os.write(sys.stdout.fileno(), f"FLUSHED {self.written}\n".encode())

    def close(self):
        self.file.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--pace", type=float, default=0.001, help="seconds between writes")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between flushes")
    parser.add_argument("--bug", choices=BUGS)
    args = parser.parse_args()

    stop = threading.Event()
    store = None

    def on_signal(signum, frame):
        if args.bug == "handler-print":
            print(f"flush_store: {signal.Signals(signum).name}, stopping", flush=True)
        if args.bug == "handler-flush" and store is not None:
            store.flush()
        if args.bug == "seal-in-handler" and store is not None:
            store.seal()
        stop.set()

    install_handlers(on_signal)

    store = Store(args.store, args.interval, args.bug)
    try:
        for record_id in range(1, args.writes + 1):
            if stop.is_set():
                break
            store.put(record_id)
            time.sleep(args.pace)
    finally:
        store.stop()
        store.close()
    if stop.is_set():
        print("flush_store: stopped; every acknowledged record is on disk", file=sys.stderr)
        return STOPPED
    return 0


if __name__ == "__main__":
    exit_with(main())
