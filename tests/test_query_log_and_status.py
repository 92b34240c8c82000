"""The query log and `status` asking a running server: real server processes, real DNS clients."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode

from bns_resolver.dns.querylog import outcome_of, question_of
from tests.support.dns_fixtures import ServerProcess

LINE = re.compile(r"client=(\S+) name=(\S+) type=(\S+) rcode=(\S+) ede=(\S+) source=(\S+) us=(\d+)")


def _status(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bns_resolver.cli", "status", "--data-dir", str(data_dir), *extra],
                          capture_output=True, text=True, timeout=60)


def _query_lines(server: ServerProcess, count: int, timeout: float = 5.0,
                 skip_name: str | None = None) -> list[tuple[str, ...]]:
    """Wait for `count` query lines (not counting those for `skip_name`) and return them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [match.groups() for match in LINE.finditer(server.log()) if match.group(2) != skip_name]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_query_log_names_each_query_and_what_answered_it(tmp_path: Path, upstream: object) -> None:
    """One line per query, with the part that answered: store (or index), cache, replay, forward."""
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address],  # type: ignore[attr-defined]
                           extra=["--query-log"]).start()
    try:
        for _ in range(3):  # compiled store, then the answer cache, then (its entry made) the UDP replay table
            assert server.query("_http._tcp.zone117x.id", "URI").answer
        assert server.query("_http._tcp.zone117x.id", "URI", tcp=True).answer  # TCP answers are kept apart
        assert server.query("example.com", "A").answer
        refused_ede = server.query("use-application-dns.net", "A")
        assert refused_ede.rcode() == dns.rcode.NXDOMAIN
        # The fixture's start-up check (id. SOA, asked again if a try times out) is logged too: leave it out.
        lines = _query_lines(server, 6, skip_name="id.")
    finally:
        server.stop()
    assert [(name, qtype, rcode) for _client, name, qtype, rcode, _ede, _source, _us in lines] == [
        ("_http._tcp.zone117x.id.", "URI", "NOERROR")] * 4 + [
        ("example.com.", "A", "NOERROR"), ("use-application-dns.net.", "A", "NXDOMAIN")]
    sources = [line[5] for line in lines]
    # "index" until the compiled store is built in the background after start, "store" after.
    assert sources[0] in ("store", "index") and sources[3] in ("store", "index"), sources
    assert [sources[1], sources[2], sources[4], sources[5]] == ["cache", "replay", "forward", "index"], sources
    assert all(line[0] == "127.0.0.1" and int(line[6]) > 0 for line in lines)


def test_query_log_is_off_by_default_and_refusals_are_logged(tmp_path: Path) -> None:
    """Without [log] queries no query lines; a client outside the allow-list is logged (rate-limited)."""
    server = ServerProcess(tmp_path / "data", extra=["--allow", "192.0.2.0/24"]).start()
    try:
        for _ in range(20):
            assert server.query("zone117x.id", "A").rcode() == dns.rcode.REFUSED
    finally:
        server.stop()
    log = server.log()
    assert not LINE.search(log)
    refusals = log.count("refused a query from 127.0.0.1: not in the allow-list")
    assert 1 <= refusals <= 5, log  # one per query would let a client flood the log


def test_query_log_lines_show_the_extended_error_and_escape_odd_names() -> None:
    """The EDE code is read from the answer's OPT; a name's spaces and control bytes cannot forge a field."""
    query = dns.message.make_query("a b\nsource=forged.id", "A", use_edns=0)
    assert question_of(query.to_wire()) == ("a\\032b\\010source=forged.id.", "A")
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.SERVFAIL)
    reply.use_edns(0, options=[dns.edns.EDEOption(dns.edns.EDECode.NOT_READY, "syncing")])
    assert outcome_of(reply.to_wire()) == ("SERVFAIL", "14")
    assert outcome_of(None) == ("DROPPED", "-")
    assert question_of(b"\x00\x01") == ("-", "-")


def test_status_asks_the_running_server(tmp_path: Path) -> None:
    """`status` finds the server through its data dir and shows its addresses, uptime and probes."""
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    try:
        shown = _status(data_dir)
        as_json = json.loads(_status(data_dir, "--json").stdout)
    finally:
        server.stop()
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"server: running, pid {server.process.pid}, up \d+m \d+s", shown.stdout), shown.stdout  # type: ignore[union-attr]
    assert f"dns: 127.0.0.1:{server.port}" in shown.stdout and "tld probes:" in shown.stdout
    running = as_json["server"]
    assert running["running"] is True and running["dns"] == [f"127.0.0.1:{server.port}"]
    assert running["ready"] is True and running["height"] == 665750 and running["uptime_seconds"] >= 0
    assert as_json["names"] == 12  # and what the database says, as before
    after = json.loads(_status(data_dir, "--json").stdout)["server"]
    assert after == {"running": False, "reason": f"no server is running on this data dir (no {data_dir / 'server.json'})"}


def test_status_after_a_killed_server_says_it_exited(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    pid = server.process.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)  # type: ignore[union-attr]
    shown = _status(data_dir)
    assert f"pid {pid} in {data_dir / 'server.json'} has exited" in shown.stdout, shown.stdout


def test_status_endpoint_serves_metrics_health_and_status(tmp_path: Path) -> None:
    """The [metrics] listen endpoint answers the three paths and 404 elsewhere; it is in the runtime file."""
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    try:
        base = json.loads((data_dir / "server.json").read_text())["endpoints"][0]
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            health = json.loads(response.read())
        with urllib.request.urlopen(f"{base}/status.json", timeout=5) as response:
            status = json.loads(response.read())
        try:
            urllib.request.urlopen(f"{base}/", timeout=5)
            missing = 200
        except urllib.error.HTTPError as exc:
            missing = exc.code
    finally:
        server.stop()
    assert "bns_index_height 665750" in metrics and health == {"ready": True, "reason": None, "height": 665750}
    assert "# TYPE bns_upstream_exchanges_total counter" in metrics and "bns_dns_rate_limited_total 0" in metrics
    assert status["pid"] == server.process.pid and status["status_endpoint"] == [base]  # type: ignore[union-attr]
    assert missing == 404


def test_status_endpoint_off_and_outside_the_allow_list(tmp_path: Path) -> None:
    """[metrics] listen = [] leaves no endpoint; a loopback client outside [dns] allow gets 403 and a hint."""
    off = ServerProcess(tmp_path / "off", config="[metrics]\nlisten = []\n").start()
    try:
        shown_off = _status(tmp_path / "off")
    finally:
        off.stop()
    assert "without a status endpoint ([metrics] listen = [])" in shown_off.stdout, shown_off.stdout
    closed = ServerProcess(tmp_path / "closed", extra=["--allow", "192.0.2.0/24"]).start()
    try:
        shown_closed = _status(tmp_path / "closed")
    finally:
        closed.stop()
    assert "HTTP 403 (is 127.0.0.1 in [dns] allow?)" in shown_closed.stdout, shown_closed.stdout
