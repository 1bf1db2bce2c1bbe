"""killpoint_probe: mark points of a program for killpoint's probe strikes (stdlib only).

    import killpoint_probe
    killpoint_probe.mark("flush-begin")
    ...
    killpoint_probe.mark(f"ack {record_id}")

Under killpoint, KILLPOINT_PROBE_FD names a socket. mark() writes its text as one line and
waits for one byte back; killpoint replies only after it has delivered any signal a strike
planned for that mark (`at = { probe = "flush-begin", nth = "1.." }`). Python runs signal
handlers in the main thread between bytecodes: a mark made by the main thread runs the
handler inside mark() (the read is retried after it, PEP 475), so the signal lands at
exactly the marked point; if the handler raises (KeyboardInterrupt), mark() raises it.

The first word of the line is the mark's name, the rest its argument (`ack 7`). Outside
killpoint (no variable), or once killpoint has gone, mark() does nothing. Threads take
turns. Do not call it from a signal handler.

Copy this file next to your program; it is one module with no dependencies.
"""

import os
import stat
import threading

PROBE_FD_VAR = "KILLPOINT_PROBE_FD"

_lock = threading.Lock()
_fd = None  # None: not looked at yet; -1: off; else the socket's descriptor


def _open():
    try:
        fd = int(os.environ.get(PROBE_FD_VAR, ""))
    except ValueError:
        return -1
    if fd <= 2:
        return -1
    # Only a socket is taken: if the program closed the descriptor and the number now
    # names one of its own files, marks must not write into it.
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return -1
    except OSError:
        return -1
    return fd


def mark(text):
    """Marks a point: "name" or "name arg". Returns once killpoint has dealt with it."""
    global _fd
    with _lock:
        if _fd is None:
            _fd = _open()
        if _fd < 0:
            return
        line = (text.rstrip("\n") + "\n").encode()
        try:
            while line:
                line = line[os.write(_fd, line):]
            if os.read(_fd, 1) == b"":
                _fd = -1
        except OSError:
            _fd = -1


def active():
    """Whether marks reach killpoint."""
    global _fd
    with _lock:
        if _fd is None:
            _fd = _open()
        return _fd >= 0
