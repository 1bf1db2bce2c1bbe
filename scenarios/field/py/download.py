#!/usr/bin/env python3
"""A throttled HTTP download in the standard library, for a server being stopped: GET
PATH from 127.0.0.1:PORT over a socket with a small receive buffer (64 KiB, so what the
server has not sent is still the server's to send, not the kernel's), read at RATE bytes
a second, then one line on stdout saying how it ended:

    DOWNLOAD http=200 bytes=8388608 length=8388608 end=complete
    DOWNLOAD http=200 bytes=5111808 length=8388608 end=eof       (the server closed early)
    DOWNLOAD http=000 bytes=0 length=0 end=refused               (never connected)

`end` is complete (Content-Length bytes received, then EOF), eof, reset, timeout or
refused; `http=000` means no status line arrived. Exits 0 when complete, else 1.

Usage: download.py PORT PATH RATE
"""
import socket
import sys
import time

port, path, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
CHUNK = 65536
status, got, length, end = "000", 0, 0, None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHUNK)
sock.settimeout(10)
try:
    sock.connect(("127.0.0.1", port))
except OSError:
    end = "refused"
if end is None:
    try:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(CHUNK)
            if not data:
                raise EOFError
            head += data
        head, body = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split()[1]
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        got = len(body)
        start = time.monotonic()
        while True:
            # Read no faster than RATE: sleep until the bytes so far are due.
            ahead = got / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            data = sock.recv(CHUNK)
            if not data:
                break
            got += len(data)
        end = "complete" if length and got == length else "eof"
    except EOFError:
        end = "eof"
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    except OSError:
        end = "reset"
print("DOWNLOAD http=%s bytes=%d length=%d end=%s" % (status, got, length, end), flush=True)
sys.exit(0 if end == "complete" else 1)
