"""The command line as a user runs it: real processes, real data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bns_resolver.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_import_then_lookup_shows_verified_zone_file(tmp_path: Path) -> None:
    """import-snapshot fills the data dir; lookup prints the record and says it verifies."""
    imported = _run("import-snapshot", "--data-dir", str(tmp_path))
    assert imported.returncode == 0 and "12 names" in imported.stdout
    looked = _run("lookup", "zone117x.id", "--data-dir", str(tmp_path))
    assert looked.returncode == 0
    assert "verified: hash160 matches" in looked.stdout and "_http._tcp" in looked.stdout


def test_lookup_of_unknown_name_fails(tmp_path: Path) -> None:
    """An unknown name exits non-zero with a plain message."""
    result = _run("lookup", "nobody.id", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "not in the index" in result.stdout


def test_status_json(tmp_path: Path) -> None:
    """status --json is one JSON object with the documented keys."""
    _run("import-snapshot", "--data-dir", str(tmp_path))
    status = json.loads(_run("status", "--json", "--data-dir", str(tmp_path)).stdout)
    assert {"network", "height", "tip", "consensus_hash", "names", "zonefiles"} <= set(status)
    assert (status["names"], status["height"], status["source"]) == (12, 665750, "snapshot")


def test_bad_snapshot_path_is_reported(tmp_path: Path) -> None:
    """A wrong path gives an error message and exit code 2, not a traceback."""
    result = _run("import-snapshot", str(tmp_path / "nope"), "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "neither a folder" in result.stderr and "Traceback" not in result.stderr


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM stops the server with exit code 0."""
    from tests.support.dns_fixtures import ServerProcess

    server = ServerProcess(tmp_path / "data").start()
    assert server.query("_http._tcp.zone117x.id", "URI").answer
    assert server.stop() == 0
    assert "stopped" in server.log()


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    """A port in use gives a one-line error, not a traceback."""
    import socket

    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    try:
        port = holder.getsockname()[1]
        result = _run("serve", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{port}")
        assert result.returncode == 2 and "cannot listen" in result.stderr and "Traceback" not in result.stderr
    finally:
        holder.close()
