"""A truncated or corrupt SQLite index: one line naming the file and what to do, never a crash loop.

At start the damage is found when the index is opened: the command stops with that line and
exit status 65 (EX_DATAERR), which the systemd unit lists in RestartPreventExitStatus so it is
not restarted every two seconds for ever. Damage the open does not touch (pages of one table)
shows only when a query reads them: that query gets SERVFAIL with an EDE, the server keeps
answering everything else, and the log says once what is wrong — no traceback per query.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dns.edns
import dns.rcode
import pytest

from bns_resolver.cli import EXIT_DAMAGED_INDEX
from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, make_index

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "bns-resolver.service"
PAGE = 4096


def _zonefile(label: str, address: str) -> bytes:
    # Long TXT records: each zone file fills pages of its own (overflow pages), away from the names table.
    txt = "".join(f'\n{label} IN TXT "{"x" * 200}{i}"' for i in range(12))
    return f"$ORIGIN {label}.id\n$TTL 3600\n@ IN A {address}{txt}\n".encode()


def _small_index(data_dir: Path) -> Path:
    engine = make_index(data_dir, IndexSpec(names=[
        NameSpec("alice.id", _zonefile("alice", "192.0.2.1")),
        NameSpec("bob.id", _zonefile("bob", "192.0.2.2")),
    ]))
    engine.dispose()
    path = data_dir / "index.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, as after a clean stop
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _overwrite_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"this is not SQLite" * 4)


def _scramble_schema(path: Path) -> None:
    with path.open("r+b") as f:  # page 1 after its 100-byte header: the schema table's root
        f.seek(100)
        f.write(os.urandom(PAGE - 100))


def _pages_of(path: Path, table: str) -> list[int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype != 'internal'",
                                (table,)).fetchall()
        except sqlite3.OperationalError:
            pytest.skip("this SQLite has no dbstat table to find a table's pages")
    return [row[0] for row in rows]


def _damage_pages(path: Path, pages: list[int]) -> None:
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * PAGE)
            f.write(os.urandom(PAGE))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bns_resolver.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("damage", [_truncate, _overwrite_header, _scramble_schema])
def test_a_damaged_index_stops_serve_with_one_line_and_no_restart(tmp_path: Path,
                                                                 damage: Callable[[Path], None]) -> None:
    data_dir = tmp_path / "data"
    path = _small_index(data_dir)
    damage(path)
    for command in (["serve", "--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"],
                    ["status"]):
        run = _cli(*command, "--data-dir", str(data_dir))
        lines = run.stderr.strip().splitlines()
        assert run.returncode == EXIT_DAMAGED_INDEX, (command, run.returncode, run.stderr)
        assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert f"the index file {path} is damaged" in lines[0] and "move index.sqlite" in lines[0], lines[0]
    assert f"RestartPreventExitStatus={EXIT_DAMAGED_INDEX}" in UNIT.read_text().splitlines()


def test_following_the_advice_brings_the_server_back(tmp_path: Path) -> None:
    """Move the damaged files aside, start again: serve imports the embedded snapshot and answers."""
    data_dir = tmp_path / "data"
    path = _small_index(data_dir)
    _truncate(path)
    assert _cli("status", "--data-dir", str(data_dir)).returncode == EXIT_DAMAGED_INDEX
    aside = tmp_path / "damaged"
    aside.mkdir()
    for file in data_dir.glob("index.sqlite*"):
        file.rename(aside / file.name)
    server = ServerProcess(data_dir).start(timeout=120)
    try:
        assert server.query("_http._tcp.zone117x.id.", "URI").rcode() == dns.rcode.NOERROR
    finally:
        server.stop()


def test_damage_found_by_a_query_is_servfail_and_the_server_keeps_answering(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = _small_index(data_dir)
    _damage_pages(path, _pages_of(path, "zonefiles"))  # zone-file bytes unreadable; names still readable
    server = ServerProcess(data_dir, config=bns_only_config(["id"])).start()
    try:
        for _ in range(20):  # the same name again and again: every one SERVFAIL, no answer cached
            reply = server.query("alice.id.", "A", use_edns=0)
            assert reply.rcode() == dns.rcode.SERVFAIL
        ede = [o for o in reply.options if o.otype == dns.edns.EDE]
        assert ede and ede[0].code == 0 and "the index cannot be read" in (ede[0].text or ""), reply
        assert server.query("nobody.id.", "A").rcode() == dns.rcode.NXDOMAIN  # names are still read
        assert server.query("id.", "SOA").rcode() == dns.rcode.NOERROR
        assert server.alive()
        log = server.log()
        damaged = [line for line in log.splitlines()
                   if "ERROR bns_resolver.dns.authority: " in line and f"the index file {path} is damaged" in line]
        assert 1 <= len(damaged) <= 5, log[-3000:]  # rate-limited: 20 failed queries, a few lines
        assert "failed to answer" not in log, log[-3000:]
    finally:
        server.stop()
