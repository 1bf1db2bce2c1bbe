"""http_service.py: an HTTP service's graceful stop in Python, stdlib only (ThreadingHTTPServer).

Listens on 127.0.0.1:--port and, once the listener is bound, prints one line to stdout:
`READY 127.0.0.1:PORT`. Endpoints, as in the Rust http-service:
- POST /items (a body of at most 64 KiB): 201 with `X-Id: N` once item N is on disk.
- GET /items/N: the item's body (read from the log), or 404.
- GET /slow?ms=N: 200 with a 1000-byte body in ten chunks, the first at once, the last after
  N ms (default 1000): a response in flight during a stop.
- GET /download?bytes=N: a body of N bytes (default 1 MiB) in 64 KiB chunks.
- GET /health: `ok`.

The store (--store, an append-only log: a line `ID LEN HEX` per item) is written by a worker
thread fed by a queue: a handler queues the item with a future and waits on it; the worker
takes everything queued, writes it with one write(2), fsyncs, and only then resolves the
futures (group commit). Records no handler waits for are committed at the latest every
--sync-interval (default 1s). On start the log is replayed for the next id; a torn last line
is cut off.

SIGTERM or SIGINT: the handler only starts a thread that calls server.shutdown(). It cannot
call it itself: it runs in the main thread, inside serve_forever(), which shutdown() waits
for. Once serve_forever() has returned, the listening socket is closed (new connections are
refused), connections idle between keep-alive requests are closed, and the requests in
flight are waited for up to --drain-deadline (the handler threads are not daemons, and
server_close() joins them); then the store commits what is left and closes. It says
`http_service: SIGTERM: stopping: draining N connection(s)` on stderr once the listener is
closed.

With --workers N it is a pre-fork server, like gunicorn's arbiter: the parent binds the
listener, forks N workers that serve it (each as above, with its own store thread appending
to the same log with O_APPEND; ids come from a counter they share), and on SIGTERM or SIGINT
forwards SIGTERM to every worker, says `http_service: SIGTERM: stopping: forwarded to N
worker(s)`, waits for all of them under the deadline (SIGKILL past it) and exits. A worker
that dies on its own takes the rest down (exit 1). The parent logs `worker I pid P` for each.

Exit codes: 0 stopped with every connection drained (every worker, with --workers); 3 stopped
at the drain deadline, the connections still open cut; 1 an error; 2 a usage error.

Planted bugs (--bug NAME), each the correct code with one thing wrong:
- shutdown-deadlock: the signal handler calls server.shutdown() itself, as the obvious code
  does. The handler runs in the main thread, inside serve_forever(); shutdown() waits for
  serve_forever() to return, which it cannot: the service never stops (its docstring warns).
- exit-now: the handler calls sys.exit(0), and the handler threads are daemons
  (ThreadingHTTPServer's own default): the interpreter exits without waiting for them,
  cutting the responses in flight.
- keep-accepting: shutdown() taken for closing the listener: the service drains before it
  calls server_close(). serve_forever() accepts no more, but the socket still listens, so
  the kernel goes on completing connections into its backlog; those clients wait unserved
  and are reset when the socket finally closes.
- ack-before-write: answers 201 once the item is queued, not once it is written ("the
  worker writes it soon"), and so, with nothing waiting for the store, exits without
  closing it: items acknowledged since the last periodic commit are lost.
- no-wait-workers (with --workers): the parent forwards SIGTERM to its workers and exits
  at once, without waiting for them: workers are left running, orphaned, still draining.
"""

import argparse
import multiprocessing
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from shutdown import exit_with, install_handlers

DEADLINE_PASSED = 3
BUGS = ["shutdown-deadlock", "exit-now", "keep-accepting", "ack-before-write", "no-wait-workers"]
MAX_BODY = 64 * 1024
SLOW_CHUNKS, SLOW_CHUNK = 10, 100
DOWNLOAD_CHUNK = 64 * 1024
SIGNALS = {signal.SIGINT, signal.SIGTERM}
CLOSE = object()


def log(message):
    print(f"http_service: {message}", file=sys.stderr, flush=True)


def duration(text):
    """`250ms`, `5s`, `500us`, as the Rust targets take them; seconds as a float."""
    match = re.fullmatch(r"(\d+)(us|ms|s)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"`{text}` is not a duration (e.g. 250ms, 2s)")
    return int(match[1]) / {"us": 1e6, "ms": 1e3, "s": 1}[match[2]]


def parse_record(line):
    """(id, body) of a whole `ID LEN HEX\\n` line, else None."""
    fields = line.rstrip(b"\n").split(b" ") if line.endswith(b"\n") else []
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    if len(fields[2]) != 2 * int(fields[1]):
        return None
    try:
        return int(fields[0]), bytes.fromhex(fields[2].decode())
    except ValueError:
        return None


def replay(path):
    """The highest id in the log; a torn last line (a crash mid-write) is cut off, so the
    next record does not run into it."""
    highest, whole = 0, 0
    try:
        with open(path, "r+b") as log_file:
            for line in log_file:
                record = parse_record(line)
                if record is None:
                    break
                highest, whole = max(highest, record[0]), whole + len(line)
            if whole < log_file.seek(0, os.SEEK_END):
                log_file.truncate(whole)
                os.fsync(log_file.fileno())
    except FileNotFoundError:
        pass
    return highest


class StoreClosed(Exception):
    pass


class Store:
    """The write-behind store: handlers queue items, a worker thread commits them."""

    def __init__(self, path, next_id, sync_interval):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.next_id = next_id  # a multiprocessing.Value: pre-fork workers share it
        self.sync_interval = sync_interval
        self.ops = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.closed = False
        self.worker = threading.Thread(target=self._run, name="store", daemon=True)
        self.worker.start()

    def put(self, body, wait=True):
        """Queues an item and returns its id; with `wait`, once it is on disk."""
        with self.next_id.get_lock():
            self.next_id.value += 1
            item_id = self.next_id.value
        done = Future() if wait else None
        with self.lock:
            if self.closed:
                raise StoreClosed()
            self.ops.put((item_id, body, done))
        if done is not None:
            done.result()  # raises what the commit raised
        return item_id

    def get(self, item_id):
        with open(self.path, "rb") as log_file:
            for line in log_file:
                record = parse_record(line)
                if record is not None and record[0] == item_id:
                    return record[1]
        return None

    def close(self):
        """Commits what is queued and stops the worker; later puts raise StoreClosed."""
        with self.lock:
            self.closed = True
            self.ops.put(CLOSE)
        self.worker.join()
        os.fsync(self.fd)
        os.close(self.fd)

    def _run(self):
        pending, waiting, last_commit = [], [], time.monotonic()
        while True:
            timeout = max(0.0, self.sync_interval - (time.monotonic() - last_commit))
            try:
                ops = [self.ops.get(timeout=timeout)]
            except queue.Empty:
                ops = []
            # Everything queued by now goes into one commit: one write, one fsync.
            while True:
                try:
                    ops.append(self.ops.get_nowait())
                except queue.Empty:
                    break
            closing = False
            for op in ops:
                if op is CLOSE:
                    closing = True
                else:
                    item_id, body, done = op
                    pending.append(b"%d %d %s\n" % (item_id, len(body), body.hex().encode()))
                    if done is not None:
                        waiting.append(done)
            if not waiting and not closing and time.monotonic() - last_commit < self.sync_interval:
                continue
            error = None
            try:
                self._commit(b"".join(pending))
            except OSError as e:
                log(f"store commit failed: {e}")
                error = e
            for done in waiting:
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)
            pending, waiting, last_commit = [], [], time.monotonic()
            if closing:
                return

    def _commit(self, data):
        if not data:
            return
        # One write(2) per commit: with O_APPEND, the records of two workers never interleave.
        while data:
            data = data[os.write(self.fd, data):]
        os.fdatasync(self.fd)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect

    def log_message(self, format, *args):
        pass  # a line per request would swamp stderr under load

    def handle(self):
        server = self.server
        server.opened(self)
        try:
            self.close_connection = False
            # The first request is in flight from the accept on (as with hyper): a stop
            # lets the client send it and answers it.
            self.handle_one_request()
            while not self.close_connection and server.between_requests(self):
                self.handle_one_request()
        finally:
            server.ended(self)

    def parse_request(self):
        self.server.busy(self)  # a request line has arrived: no longer idle
        return super().parse_request()

    def respond(self, status, length, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        for name, value in headers:
            self.send_header(name, value)
        if self.server.stopping:
            self.send_header("Connection", "close")  # and close once it is answered
        self.end_headers()

    def reply(self, status, body, headers=()):
        self.respond(status, len(body), headers)
        self.wfile.write(body)

    def number(self, query, key, default):
        values = query.get(key)
        if values is None:
            return default
        if not values[0].isdigit():
            self.reply(400, f"{key}: `{values[0]}` is not a number\n".encode())
            return None
        return int(values[0])

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/health":
            self.reply(200, b"ok\n")
        elif url.path == "/slow":
            ms = self.number(query, "ms", 1000)
            if ms is not None:
                self.respond(200, SLOW_CHUNKS * SLOW_CHUNK)
                for k in range(SLOW_CHUNKS):
                    if k > 0:
                        time.sleep(ms / 1000 / (SLOW_CHUNKS - 1))
                    chunk = f"slow {k + 1}/{SLOW_CHUNKS} ".encode().ljust(SLOW_CHUNK - 1, b".")
                    self.wfile.write(chunk + b"\n")
        elif url.path == "/download":
            size = self.number(query, "bytes", 1 << 20)
            if size is not None:
                self.respond(200, size)
                pattern = bytes(range(ord("a"), ord("z") + 1)) * (DOWNLOAD_CHUNK // 26 + 2)
                for sent in range(0, size, DOWNLOAD_CHUNK):
                    start = sent % 26
                    self.wfile.write(pattern[start:start + min(DOWNLOAD_CHUNK, size - sent)])
        elif url.path.startswith("/items/") and url.path[7:].isdigit():
            body = self.server.store.get(int(url.path[7:]))
            if body is None:
                self.reply(404, b"no such item\n")
            else:
                self.reply(200, body)
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        if urlsplit(self.path).path != "/items":
            return self.send_error(404)
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return self.send_error(411)
        if int(length) > MAX_BODY:
            return self.send_error(413)  # and closes: the body is left unread
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            self.close_connection = True  # the client went away mid-body
            return
        try:
            # The ack-before-write bug: 201 once queued, not once written.
            item_id = self.server.store.put(body, wait=self.server.bug != "ack-before-write")
        except StoreClosed:
            return self.reply(503, b"store closed\n")
        except OSError as e:
            return self.reply(500, f"store: {e}\n".encode())
        self.reply(201, f"{item_id}\n".encode(), [("X-Id", str(item_id))])


class Server(ThreadingHTTPServer):
    # Handler threads are not daemons, so server_close() joins them and the interpreter
    # waits for them: no response is cut off at exit. (ThreadingHTTPServer's default is
    # daemon threads; exit-now keeps it.)
    daemon_threads = False

    def __init__(self, listener, store, bug):
        super().__init__(listener.getsockname(), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.store, self.bug = store, bug
        self.daemon_threads = bug == "exit-now"
        self.cond = threading.Condition()
        self.open, self.idle = set(), set()
        self.stopping = False

    def get_request(self):
        # The listener is non-blocking (pre-fork workers race for each connection); the
        # connection itself is served with blocking calls.
        connection, address = self.socket.accept()
        connection.setblocking(True)
        return connection, address

    def handle_error(self, request, client_address):
        # A client gone mid-response is not a crash: one line, no traceback.
        log(f"connection from {client_address[0]}:{client_address[1]}: {sys.exc_info()[1]!r}")

    def opened(self, handler):
        with self.cond:
            self.open.add(handler)

    def between_requests(self, handler):
        """Before a keep-alive connection waits for its next request: False once stopping."""
        with self.cond:
            if self.stopping:
                return False
            self.idle.add(handler)
            return True

    def busy(self, handler):
        with self.cond:
            self.idle.discard(handler)

    def ended(self, handler):
        with self.cond:
            self.open.discard(handler)
            self.idle.discard(handler)
            self.cond.notify_all()

    def drain(self, name, deadline):
        """Closes the idle connections, lets the others answer their request in flight and
        close; True if all of them ended within `deadline` seconds."""
        with self.cond:
            self.stopping = True
            for handler in self.idle:
                # Waiting for a request nobody has sent: wake its read with an end of file.
                # Bytes already waiting are a request, answered first.
                try:
                    try:
                        waiting = handler.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        waiting = b""
                    if not waiting:
                        handler.connection.shutdown(socket.SHUT_RD)
                except OSError:
                    pass  # already reset by the client
            count = len(self.open)
            log(f"{name}: stopping: draining {count} connection(s), deadline {deadline:g}s")
            return self.cond.wait_for(lambda: not self.open, timeout=deadline)


def serve(args, listener, next_id):
    """One server process: serves until a stop signal, then drains. Returns the exit code."""
    store = Store(args.store, next_id, args.sync_interval)
    server = Server(listener, store, args.bug)
    stop = []
    # The stopper thread is started now and woken by the handler: a handler that starts
    # a thread itself can deadlock, as it runs between two bytecodes of the main thread,
    # which may be inside Thread.start() (serving a connection) holding the lock that
    # every start takes.
    stop_requested = threading.Event()

    def stopper():
        stop_requested.wait()
        server.shutdown()

    threading.Thread(target=stopper, name="stopper", daemon=True).start()

    def on_signal(signum, frame):
        if args.bug == "exit-now":
            exit_with(0)  # the bug: SystemExit out of serve_forever(); daemon threads die
        if args.bug == "shutdown-deadlock":
            server.shutdown()  # the bug: waits for this very thread to leave serve_forever()
        if not stop:
            stop.append(signal.Signals(signum).name)
            stop_requested.set()

    install_handlers(on_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # a pre-fork worker starts blocked
    if args.workers == 0:
        print(f"READY 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    server.serve_forever(poll_interval=0.05)

    if args.bug != "keep-accepting":  # the bug: the socket is closed only after the drain
        # Closing the listener makes the kernel refuse new connections at once, so clients
        # and load balancers go elsewhere instead of waiting on a backlog nobody serves.
        server.socket.close()
    drained = server.drain(stop[0], args.drain_deadline)
    if not drained:
        log(f"drain deadline {args.drain_deadline:g}s passed with {len(server.open)} "
            "connection(s) open; cutting them")
        store.close()
        os._exit(DEADLINE_PASSED)  # the handler threads still running would hold up exit
    server.server_close()  # closes the listener (keep-accepting: only now), joins handlers
    if args.bug == "ack-before-write":
        return 0  # the bug's other half: nothing waits for the store, so it is not closed
    store.close()
    log("stopped: drained; store closed")
    return 0


def prefork(args, listener, next_id):
    """The parent of --workers worker processes sharing the listener."""
    stop = []
    install_handlers(lambda signum, frame: stop.append(signal.Signals(signum).name))
    workers = {}
    # Blocked across fork: a worker must not take a stop meant for it with the parent's
    # handler (which would only note it in the worker's copy of `stop`).
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    for index in range(1, args.workers + 1):
        pid = os.fork()
        if pid == 0:
            code = serve(args, listener, next_id)
            sys.stdout.flush()
            os._exit(code)  # never back into the parent's loop
        workers[pid] = index
        log(f"worker {index} pid {pid}")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    # No respawning, so the parent has no use for its copy: an open one would keep the
    # socket listening after every worker had closed theirs.
    listener.close()
    print(f"READY 127.0.0.1:{args.port}", flush=True)

    while not stop:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            log(f"worker {workers.pop(pid)} died on its own (status {status}); stopping the rest")
            stop_workers(workers, args.drain_deadline)
            return 1
        time.sleep(0.01)
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    log(f"{stop[0]}: stopping: forwarded to {len(workers)} worker(s)")
    if args.bug == "no-wait-workers":
        return 0  # the bug: gone before its workers are
    code = stop_workers(workers, args.drain_deadline, signalled=True)
    log(f"stopped: every worker ended (exit {code})")
    return code


def stop_workers(workers, deadline, signalled=False):
    """SIGTERM to every worker (unless already sent), then wait for all of them under one
    deadline (a little past the workers' own); SIGKILL the stragglers."""
    if not signalled:
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
    give_up = time.monotonic() + deadline + 1.0
    code = 0
    while workers:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            del workers[pid]
            code = code or (0 if os.waitstatus_to_exitcode(status) == 0 else DEADLINE_PASSED)
        elif time.monotonic() > give_up:
            for pid, index in workers.items():
                log(f"worker {index} overran the drain deadline; killing it")
                os.kill(pid, signal.SIGKILL)
            give_up = float("inf")  # the killed are reaped by the loop
            code = DEADLINE_PASSED
        else:
            time.sleep(0.01)
    return code


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", default="items.log")
    parser.add_argument("--drain-deadline", type=duration, default=5.0)
    parser.add_argument("--sync-interval", type=duration, default=1.0)
    parser.add_argument("--workers", type=int, default=0, help="pre-fork worker processes")
    parser.add_argument("--bug", choices=BUGS)
    args = parser.parse_args()
    if args.bug == "no-wait-workers" and args.workers == 0:
        parser.error("--bug no-wait-workers needs --workers N")
    try:
        listener = socket.create_server(("127.0.0.1", args.port))
        listener.setblocking(False)
        args.port = listener.getsockname()[1]
        next_id = multiprocessing.Value("q", replay(args.store))
    except OSError as e:
        log(str(e))
        return 1
    if args.workers:
        return prefork(args, listener, next_id)
    return serve(args, listener, next_id)


if __name__ == "__main__":
    exit_with(main())
