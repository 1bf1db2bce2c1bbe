#!/usr/bin/env python3
"""Lists the keys k:I a Redis data directory holds, as the ids I, one per line: copies
dump.rdb (and, with --aof, appendonlydir/) to a directory of its own, starts a second
redis-server there on a Unix socket only (no TCP port), lets it load them as a restart
would, asks it for the keys (raw RESP) and shuts it down without saving. A file the
server refuses to load (exit before ready) makes this fail (exit 1), with its log.

Usage: redis_keys.py DATA_DIR [--aof]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

data, aof = sys.argv[1], "--aof" in sys.argv[2:]
with tempfile.TemporaryDirectory(prefix="redis-keys-") as tmp:
    if os.path.exists(os.path.join(data, "dump.rdb")):
        shutil.copy(os.path.join(data, "dump.rdb"), tmp)
    if aof and os.path.isdir(os.path.join(data, "appendonlydir")):
        shutil.copytree(os.path.join(data, "appendonlydir"), os.path.join(tmp, "appendonlydir"))
    sock_path = os.path.join(tmp, "redis.sock")
    args = ["redis-server", "--port", "0", "--unixsocket", sock_path, "--dir", tmp,
            "--dbfilename", "dump.rdb", "--save", "", "--daemonize", "no",
            "--appendonly", "yes" if aof else "no", "--appenddirname", "appendonlydir"]
    log = open(os.path.join(tmp, "log"), "w+")
    server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def fail(why):
        if server.poll() is None:
            server.kill()
            server.wait()
        log.seek(0)
        sys.stderr.write(why + "\n" + log.read()[-2000:])
        sys.exit(1)

    deadline = time.monotonic() + 20
    while True:
        if server.poll() is not None:
            fail("redis-server refused the data (exit %s)" % server.returncode)
        try:
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(sock_path)
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            replies = conn.makefile("rb")
            line = replies.readline()
            if line == b"+PONG\r\n":
                break
            conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            fail("redis-server did not answer in 20 s")
        time.sleep(0.02)
    conn.sendall(b"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
    header = replies.readline()
    if not header.startswith(b"*"):
        fail("KEYS answered %r" % header)
    keys = []
    for _ in range(int(header[1:])):
        length = int(replies.readline()[1:])
        keys.append(replies.read(length + 2)[:-2].decode())
    conn.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
    conn.close()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        fail("redis-server did not shut down")
    ids = sorted(int(k[2:]) for k in keys if k.startswith("k:"))
    for i in ids:
        print(i)
