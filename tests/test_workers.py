"""`[dns] workers = N`: serve and its DNS workers as real processes on one SO_REUSEPORT address.

Which process answered a query is read from the query log: with several processes, every log
line carries its process's tag and pid ("[serve 123]", "[worker 1 456]").
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import pytest
from sqlalchemy import insert, update

from bns_resolver.hashing import hash160_hex
from bns_resolver.runtime import ask_running, find_running
from bns_resolver.workers import Listener, WorkerBrief
from bns_resolver.index import schema
from bns_resolver.index.changes import record_changes
from tests.support.index_cli import cli
from tests.support.dns_fixtures import IndexSpec, NameSpec, ServerProcess, bns_only_config, make_index

pytestmark = pytest.mark.timeout(120)

FOLLOW_SECONDS = 2.0  # a functional bound (the feed and the store are polled every 0.5 s), not a benchmark
NEW_ALICE = b"$ORIGIN alice.id\n@ A 192.0.2.77\n"
WORKERS_CONFIG = "[dns]\nworkers = 2\n[log]\nqueries = true\n" + bns_only_config(["id"])
ANSWERED = re.compile(r"\[(serve|worker \d+) (\d+)\] bns_resolver\.queries: client=\S+ name=(\S+) type=\S+ "
                      r"rcode=(\S+)")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, Any]]:
    engine = make_index(tmp_path / "data", IndexSpec(names=[
        NameSpec("alice.id", b"$ORIGIN alice.id\n@ A 192.0.2.1\n")]))
    server = ServerProcess(tmp_path / "data", config=WORKERS_CONFIG).start()
    yield server, engine
    server.stop()


def _status(server: ServerProcess) -> dict[str, object]:
    running, why = find_running(server.data_dir)
    assert running is not None, why
    return ask_running(running)


def _worker_pids(server: ServerProcess, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        pids = _status(server).get("dns_workers")
        if isinstance(pids, list) and pids:
            return [int(pid) for pid in pids]
        assert time.monotonic() < deadline, "no DNS worker reported"
        time.sleep(0.1)


def _ask(server: ServerProcess, name: str) -> dns.message.Message | None:
    """One query from a fresh source port (the kernel picks the process by address and port)."""
    query = dns.message.make_query(name, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(1.0)
        client.sendto(query.to_wire(), ("127.0.0.1", server.port))
        try:
            return dns.message.from_wire(client.recv(4096))
        except TimeoutError:
            return None


def _answering(server: ServerProcess, name: str, rcode: str = "NOERROR", after: int = 0) -> dict[str, int]:
    """Per process tag, how many `name` queries it answered with `rcode` (log lines past offset `after`)."""
    counts: dict[str, int] = {}
    for match in ANSWERED.finditer(server.log()[after:]):
        if match.group(3) == name + "." and match.group(4) == rcode:
            counts[f"{match.group(1)} {match.group(2)}"] = counts.get(f"{match.group(1)} {match.group(2)}", 0) + 1
    return counts


def _until(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Exited (a zombie nobody reaped yet counts: it serves nothing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _both_answer(server: ServerProcess, name: str, after: int = 0, tries: int = 400,
                 starting: bool = False) -> dict[str, int]:
    """Ask from fresh ports until two processes answered `name`; `starting`: a process may still be
    starting, and the queries the kernel queued on its socket meanwhile time out here."""
    for _ in range(tries):
        reply = _ask(server, name)
        assert (reply is None and starting) or (reply is not None and reply.rcode() == dns.rcode.NOERROR)
        answered = _answering(server, name, after=after)
        if len(answered) >= 2:
            return answered
    return _answering(server, name, after=after)


def test_serve_and_its_worker_both_answer(served: tuple[ServerProcess, Any]) -> None:
    server, _engine = served
    status = _status(server)
    workers = _worker_pids(server)
    assert len(workers) == 1 and workers[0] != status["pid"]
    answered = _both_answer(server, "alice.id")
    assert sorted(answered) == sorted([f"serve {status['pid']}", f"worker 1 {workers[0]}"]), answered
    assert "serving DNS on 127.0.0.1:" in server.log() and "in 2 processes" in server.log()
    reply = server.query("alice.id", "A", tcp=True)  # TCP listeners are shared the same way
    assert reply.answer[0][0].to_text() == "192.0.2.1"


def _block_changes_alice(engine: Any) -> None:
    """What a block's flush does: alice.id's new value hash with its zone file, logged in the feed."""
    with engine.begin() as conn:
        conn.execute(update(schema.names).where(schema.names.c.fqn == "alice.id")
                     .values(value_hash=hash160_hex(NEW_ALICE)))
        conn.execute(insert(schema.zonefiles).values(zonefile_hash=hash160_hex(NEW_ALICE), content=NEW_ALICE,
                                                     source="test", fetched_at=0.0))
        record_changes(conn, ["alice.id"])


def _address(reply: dns.message.Message | None) -> str | None:
    return reply.answer[0][0].to_text() if reply is not None and reply.answer else None


def test_a_changed_name_is_answered_anew_by_every_process_within_two_seconds(
        served: tuple[ServerProcess, Any]) -> None:
    """alice.id's answer is cached in both processes (replay table, answer cache, store entry); after a
    block changes it, fresh source ports keep asking until every reply is the new one."""
    server, engine = served
    _worker_pids(server)
    _until(lambda: "following answer store" in server.log() and "answer store in use" in server.log(),
           "the store in use by serve and its worker", 30)
    assert len(_both_answer(server, "alice.id")) == 2
    _block_changes_alice(engine)
    committed = last_old = time.monotonic()
    fresh_run, since_old = 0, len(server.log())
    while time.monotonic() - committed < 10 and fresh_run < 60:
        address = _address(_ask(server, "alice.id"))
        assert address in ("192.0.2.1", "192.0.2.77")
        if address == "192.0.2.1":
            last_old, fresh_run, since_old = time.monotonic(), 0, len(server.log())
        else:
            fresh_run += 1
    elapsed = last_old - committed
    print(f"serve and its worker answered the changed name {elapsed:.2f} s after the commit")
    assert fresh_run >= 60, "still answering the old address after 10 s"
    assert len(_answering(server, "alice.id", after=since_old)) == 2  # both answered the new one
    assert elapsed <= FOLLOW_SECONDS, f"{elapsed:.2f} s"
    assert "Traceback" not in server.log()


def test_a_killed_worker_is_started_again(served: tuple[ServerProcess, Any]) -> None:
    server, _engine = served
    [first] = _worker_pids(server)
    os.kill(first, signal.SIGKILL)
    _until(lambda: _worker_pids(server) != [first], "a new worker", 15)
    [second] = _worker_pids(server)
    assert f"DNS worker 1 (pid {first}) exited with status -9; starting it again" in server.log()
    mark = len(server.log())
    _until(lambda: f"worker 1 {second}" in _both_answer(server, "alice.id", after=mark, tries=20, starting=True),
           "the new worker answering", 15)
    assert server.alive()


def test_killing_serve_leaves_no_worker(served: tuple[ServerProcess, Any]) -> None:
    server, _engine = served
    [worker] = _worker_pids(server)
    _until(lambda: f"(pid {worker}) serving" in server.log(), "the worker serving", 15)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    _until(lambda: _gone(worker), f"worker {worker} to exit after serve was killed", 10)
    assert "serve has exited: this DNS worker stops too" in server.log()


def test_stopping_serve_stops_its_workers(served: tuple[ServerProcess, Any]) -> None:
    server, _engine = served
    [worker] = _worker_pids(server)
    assert server.stop() == 0
    assert _gone(worker)  # serve waited for it before exiting


def test_a_bad_workers_value_is_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[dns]\nworkers = 0\n")
    done = cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f'bns-resolver: {config}: [dns] workers: must be at least 1, got 0 (or "auto")']


def test_the_worker_entry_refuses_to_run_without_serve() -> None:
    done = cli("dns-worker", timeout=30)
    assert done.returncode == 2 and "started by `serve`" in done.stderr
    assert "dns-worker" not in cli("--help").stdout  # hidden


def test_a_brief_reads_back_as_written(tmp_path: Path) -> None:
    brief = WorkerBrief(1, 3, 42, "[dns]\nworkers = 3\n", (Listener("::1", 53, 5, 6, "::1"),))
    path = tmp_path / "brief"
    path.write_bytes(brief.encode())
    with path.open("rb") as stream:
        assert WorkerBrief.read(stream) == brief
