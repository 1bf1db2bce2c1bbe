#!/usr/bin/env python3
"""A killpoint checker for downloads from a server being stopped: every download the
server had begun to answer (its status line and headers arrived) must have come to its
end, with all its bytes.

Each client (py/download.py) prints one line per download:
`DOWNLOAD http=200 bytes=8388608 length=8388608 end=complete`. A download whose
connection was refused, or closed before any response (`http=000`), was never in flight:
the server had stopped accepting, which its graceful shutdown allows. Usage: check_downloads.py SIZE, with the
case's outcome (JSON) on stdin. Exits 0 when the promise held, 1 when it was broken,
printing each cut download.
"""
import json
import re
import sys

size = int(sys.argv[1])
outcome = json.load(sys.stdin)
sent = [s for s in outcome["strikes"] if s.get("sent_at") is not None]
stop = outcome.get("stop")
if sent:
    when = "after %s sent at %.1f ms" % (sent[0]["signal"], sent[0]["sent_at"])
elif stop:
    when = "after the stop (%s at %.1f ms)" % (stop["signal"], stop["sent_at"])
else:
    when = "with no signal sent"
line = re.compile(r"^DOWNLOAD http=(\d{3}) bytes=(\d+) length=(\d+) end=(\w+)$")
broken = []
seen = 0
for n, client in enumerate(outcome.get("clients", []), 1):
    for text in client["stdout"]["text"].splitlines():
        m = line.match(text)
        if not m:
            continue
        seen += 1
        http, got, end = m.group(1), int(m.group(2)), m.group(4)
        if http == "000":
            continue
        if http != "200" or got != size or end != "complete":
            broken.append(
                "client %d: download answered %s ended (%s) at %d of %d bytes %s"
                % (n, http, end, got, size, when)
            )
if not outcome.get("strikes") and seen == 0:
    print("no client printed a DOWNLOAD line: the clients did not run")
    sys.exit(1)
for b in broken:
    print(b)
sys.exit(1 if broken else 0)
