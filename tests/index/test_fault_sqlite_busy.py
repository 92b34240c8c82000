"""SQLite busy: another process holds the index's write lock.

A running server only reads (write-ahead log: readers never wait for a writer), so it keeps
answering. A second writer — here `import-snapshot` — waits out the busy timeout, then stops
with one line and exit 2, the index untouched; once the lock is gone the same command works
and the running server picks up the result by itself.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dns.rcode
import dns.rdatatype

from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, make_index
from tests.support.netns import wait_until

ALICE = b"$ORIGIN alice.id\n$TTL 3600\n@ IN A 192.0.2.1\n"


def _a_records(server: ServerProcess, name: str) -> tuple[int, list[str]]:
    reply = server.query(name, "A")
    return reply.rcode(), sorted(rd.to_text() for rrset in reply.answer
                                 if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def test_a_held_write_lock_blocks_only_the_second_writer(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_index(data_dir, IndexSpec(names=[NameSpec("alice.id", ALICE)])).dispose()
    server = ServerProcess(data_dir, config=bns_only_config(["id"])).start()
    holder = sqlite3.connect(data_dir / "index.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long write by another process holds it
        holder.execute("UPDATE sync_state SET value = value WHERE key = 'height'")
        started = time.monotonic()
        blocked = subprocess.run([sys.executable, "-m", "bns_resolver.cli", "import-snapshot", "--data-dir",
                                  str(data_dir)], capture_output=True, text=True, timeout=120, check=False)
        waited = time.monotonic() - started
        lines = [line for line in blocked.stderr.strip().splitlines() if " INFO " not in line]  # progress lines aside
        assert blocked.returncode == 2 and len(lines) == 1 and "Traceback" not in blocked.stderr, blocked.stderr
        assert "database is locked; the index was left as it was" in lines[0], lines[0]
        assert waited >= 4.5, f"gave up after {waited:.1f} s, before SQLite's busy timeout"
        assert _a_records(server, "alice.id.") == (dns.rcode.NOERROR, ["192.0.2.1"])  # reads never waited
        assert _a_records(server, "zone117x.id.")[0] == dns.rcode.NXDOMAIN  # nothing of the import
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        imported = subprocess.run([sys.executable, "-m", "bns_resolver.cli", "import-snapshot", "--data-dir",
                                   str(data_dir)], capture_output=True, text=True, timeout=120, check=False)
        assert imported.returncode == 0, imported.stderr
        wait_until(lambda: server.query("_http._tcp.zone117x.id.", "URI").rcode() == dns.rcode.NOERROR or None,
                   timeout=30, what="the server to answer from the import")
        assert _a_records(server, "alice.id.")[0] == dns.rcode.NXDOMAIN  # the import replaced the index
        assert server.alive()
    finally:
        server.stop()
