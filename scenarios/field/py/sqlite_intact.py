#!/usr/bin/env python3
"""A `valid` command for an SQLite database: exit 0 when PRAGMA integrity_check says
"ok" and every TABLE named exists; 1 (printing what is wrong) otherwise, or when the file
cannot be opened as a database. Opening it rolls back a hot journal, as any next opener
of the database does. Naming the tables matters: an empty file is a valid, empty
database, and so is one truncated to nothing.

Usage: sqlite_intact.py DATABASE [TABLE...]
"""
import os
import sqlite3
import sys

name = os.path.basename(sys.argv[1])
try:
    db = sqlite3.connect(sys.argv[1])
    result = [row[0] for row in db.execute("PRAGMA integrity_check")]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
except sqlite3.DatabaseError as e:
    print("%s: %s" % (name, e))
    sys.exit(1)
if result != ["ok"]:
    print("%s: integrity_check: %s" % (name, "; ".join(result[:5])))
    sys.exit(1)
missing = [t for t in sys.argv[2:] if t not in tables]
if missing:
    print("%s: no table %s (%d bytes)" % (name, ", ".join(missing), os.path.getsize(sys.argv[1])))
    sys.exit(1)
