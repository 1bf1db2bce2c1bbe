#!/usr/bin/env python3
"""A Redis client in the standard library: SET k:I v:I for I = FIRST .. FIRST+N-1, one
command at a time over one connection (raw RESP), printing `ACK I` once the server
answered +OK. Stops at the first error or closed connection (exit 1).

Usage: redis_set.py PORT N [FIRST]
"""
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
first = int(sys.argv[3]) if len(sys.argv) > 3 else 1


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


sock = socket.create_connection(("127.0.0.1", port), timeout=10)
replies = sock.makefile("rb")
for i in range(first, first + n):
    try:
        sock.sendall(command("SET", "k:%d" % i, "v:%d" % i))
        reply = replies.readline()
    except OSError as e:
        print("ERROR at %d: %s" % (i, e), file=sys.stderr)
        sys.exit(1)
    if reply != b"+OK\r\n":
        print("ERROR at %d: %r" % (i, reply), file=sys.stderr)
        sys.exit(1)
    print("ACK", i, flush=True)
