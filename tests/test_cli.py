"""The command line as a user runs it: real processes, real data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


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


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`lookup | head -1`: the closed pipe ends lookup quietly, exit 0 (CI once failed on `| grep -q`)."""
    _run("import-snapshot", "--data-dir", str(tmp_path))
    piped = subprocess.run(f"{sys.executable} -m bns_resolver.cli lookup zone117x.id --data-dir {tmp_path} | head -c 1;"
                           " echo \" ${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash", capture_output=True,
                           text=True, timeout=60)
    assert piped.stdout == "n 0\n" and "Traceback" not in piped.stderr, piped.stderr


def test_lookup_of_unknown_name_says_what_is_loaded(tmp_path: Path) -> None:
    """An unknown name exits non-zero, says how many names are loaded and how to get the full export."""
    _run("import-snapshot", "--data-dir", str(tmp_path))
    result = _run("lookup", "nobody.id", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "not in the index" in result.stdout
    assert "12 names are loaded" in result.stdout and "import-snapshot https://" in result.stdout


def test_lookup_and_status_on_an_empty_data_dir_say_what_to_run(tmp_path: Path) -> None:
    """No index yet: say which command fills it, instead of a bare 'not in the index'."""
    looked = _run("lookup", "zone117x.id", "--data-dir", str(tmp_path))
    assert looked.returncode == 1 and f"import-snapshot --data-dir {tmp_path}" in looked.stderr
    status = _run("status", "--data-dir", str(tmp_path))
    assert status.returncode == 0 and "is empty" in status.stderr and "import-snapshot" in status.stderr


def test_broken_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A typo in the file, an impossible value, a host name as upstream: one line, exit 2, no traceback."""
    config = tmp_path / "c.toml"
    cases = [('[dns]\nlisen = ["127.0.0.1:53"]\n', ["serve"], f"{config}: [dns] lisen: unknown key"),
             ("[dns]\ncache_entries = 0\n", ["serve"], f"{config}: [dns] cache_entries: must be at least 1"),
             ("", ["serve", "--upstream", "nohost.invalid"], "--upstream 'nohost.invalid': 'nohost.invalid' is not"),
             ("", ["serve", "--allow", "10.0.0.0/33"], "--allow '10.0.0.0/33': '10.0.0.0/33' is not a network"),
             ("", ["lookup", "x.id", "--db", "bogus"], "--db 'bogus': not a database URL"),
             ('[chain]\nnetwork = "signet"\n', ["config", "check"], f"{config}: [chain] network: must be one of")]
    for text, args, expected in cases:
        config.write_text(text)
        where = [str(config)] if args[0] == "config" else ["--config", str(config), "--data-dir", str(tmp_path)]
        result = _run(*args, *where)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr


def test_config_check_prints_effective_settings(tmp_path: Path) -> None:
    """config check FILE: the file's values and the defaults, as TOML, exit 0."""
    config = tmp_path / "c.toml"
    config.write_text('[dns]\nupstreams = ["9.9.9.9"]\n[web]\nenabled = false\n')
    result = _run("config", "check", str(config))
    assert result.returncode == 0, result.stderr
    assert 'upstreams = ["9.9.9.9:53"]' in result.stdout and "cache_entries = 10000" in result.stdout
    assert "[web]\nenabled = false" in result.stdout


def test_serve_without_usable_upstream_refuses_to_start(tmp_path: Path) -> None:
    """Forwarding to our own socket would loop: refuse, and say what to pass."""
    from tests.support.dns_fixtures import free_port

    port = free_port()
    result = _run("serve", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{port}",
                  "--upstream", f"127.0.0.1:{port}")
    assert result.returncode == 2 and "would loop" in result.stderr and "--upstream" in result.stderr
    assert "Traceback" not in result.stderr


def test_permission_denied_gives_the_capability_recipe() -> None:
    """EACCES on a low port: the one-line answer names CAP_NET_BIND_SERVICE and the setpriv recipe."""
    import errno

    from twisted.internet.error import CannotListenError

    from bns_resolver.cli import _cannot_listen

    message = _cannot_listen(CannotListenError("127.0.0.1", 53, PermissionError(errno.EACCES, "Permission denied")))
    assert "CAP_NET_BIND_SERVICE" in message and "--ambient-caps=+net_bind_service" in message
    assert "\n" not in message


def test_status_json(tmp_path: Path) -> None:
    """status --json is one JSON object with the documented keys."""
    _run("import-snapshot", "--data-dir", str(tmp_path))
    status = json.loads(_run("status", "--json", "--data-dir", str(tmp_path)).stdout)
    assert {"network", "height", "tip", "consensus_hash", "names", "zonefiles"} <= set(status)
    assert (status["names"], status["height"], status["source"]) == (12, 665750, "snapshot")
    # Vesting only moves STX from locked to liquid, so the total at the freeze is the genesis
    # block's 1,320,000,000 + the patches' net 249,998.790556 (599865 and 613249 add rows and
    # delete unallocated labels) + 322,146 airdrop lines x 100 = 32,214,600.
    assert status["stx_supply"] == ("1,352,464,598.790556 STX at 665750 "
                                    "(liquid 1,006,381,700.653151 + vesting 346,082,898.137405)")


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


def test_log_says_what_it_serves_without_twisted_noise(tmp_path: Path, upstream: object) -> None:
    """A start logs index, namespaces, addresses and upstreams; forwarded queries add no per-port lines."""
    from tests.support.dns_fixtures import ServerProcess

    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address]).start()  # type: ignore[attr-defined]
    try:
        for _ in range(3):
            assert server.query("example.com", "A").answer
            server.query(f"nx{_}.example.com", "A")
    finally:
        server.stop()
    log = server.log()
    assert "12 names, 5 namespaces" in log and "namespaces: blockstack (" in log
    assert f"serving DNS on 127.0.0.1:{server.port}; upstreams {upstream.address}" in log  # type: ignore[attr-defined]
    assert "starting on" not in log and "Closed)" not in log, log


class _Relay:
    """An 'upstream' that sends every query straight back to bns-resolver: the dnsmasq-in-front loop."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", target_port)
        self.clients: dict[bytes, tuple[str, int]] = {}
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            if peer == self.target:  # a reply: back to whoever asked with that ID
                client = self.clients.pop(data[:2], None)
                if client:
                    self.sock.sendto(data, client)
            else:
                self.clients[data[:2]] = peer
                self.sock.sendto(data, self.target)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def test_upstream_that_sends_our_namespaces_back_is_refused(tmp_path: Path) -> None:
    """A random probe name that comes back to be forwarded again: exit 2 with the loop explained."""
    from tests.support.dns_fixtures import free_port

    port = free_port()
    relay = _Relay(port)
    try:
        result = _run("serve", "--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{port}",
                      "--upstream", f"127.0.0.1:{relay.port}")
    finally:
        relay.close()
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bns-resolver: forwarding loop: the upstream 127.0.0.1:") and "--upstream" in last


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """A PostgreSQL that refuses connections: the driver's multi-line message on one line, exit 2."""
    from tests.support.dns_fixtures import free_port

    pytest.importorskip("psycopg2")
    result = _run("status", "--data-dir", str(tmp_path), "--db", f"postgresql+psycopg2://u@127.0.0.1:{free_port()}/db")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "cannot open the index" in lines[0], result.stderr


def test_import_snapshot_from_a_url(tmp_path: Path) -> None:
    """import-snapshot URL downloads the export tarball into the data dir and imports it, digests checked."""
    import functools
    import hashlib
    import http.server
    import tarfile
    import threading

    from bns_resolver.index.snapshot import EMBEDDED_DIR

    served = tmp_path / "www"
    served.mkdir()
    with tarfile.open(served / "export-data.tar.gz", "w:gz") as tar:
        for path in sorted(EMBEDDED_DIR.iterdir()):
            if path.suffix in (".txt", ".csv", ".sha256"):
                tar.add(path, arcname=f"export-data/{path.name}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/export-data.tar.gz"
        # Without --sha256 a URL's files must be the production ones; the embedded chainstate.txt is cut down.
        unpinned = _run("import-snapshot", url, "--data-dir", str(tmp_path / "data"))
        digest = hashlib.sha256((served / "export-data.tar.gz").read_bytes()).hexdigest()
        tampered = _run("import-snapshot", url, "--sha256", "0" * 64, "--data-dir", str(tmp_path / "data"))
        result = _run("import-snapshot", url, "--sha256", digest, "--data-dir", str(tmp_path / "data"))
        missing = _run("import-snapshot", url + ".nope", "--data-dir", str(tmp_path / "data"))
    finally:
        server.shutdown()
    assert unpinned.returncode == 2 and "chainstate.txt: sha256" in unpinned.stderr and "pinned" in unpinned.stderr
    assert tampered.returncode == 2 and "does not match the pinned" in tampered.stderr
    assert "nothing was loaded" in tampered.stderr and "Traceback" not in tampered.stderr
    assert result.returncode == 0 and "12 names" in result.stdout, result.stderr
    assert (tmp_path / "data" / "export-data.tar.gz").exists()
    assert missing.returncode == 2 and "cannot download" in missing.stderr and "Traceback" not in missing.stderr
