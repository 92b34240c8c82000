"""A full disk under a running `serve`: the import that hits it fails with one line, the server
keeps serving the old index, and nothing of the half-written import is ever answered.

The data dir sits on a small tmpfs mounted in a private mount namespace (`unshare -m`); the
server runs inside it, and `import-snapshot` joins it with `nsenter`. The export is the embedded
one plus 400 names with 2 KB zone files, so a half-loaded import would answer `extraN.id`.
Given room (the tmpfs remounted larger), the same import succeeds and the server switches to it:
the names the failed import must not show are really there to show.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from bns_resolver.hashing import hash160
from bns_resolver.index.snapshot import EMBEDDED_DIR
from tests.support.bitcoind import BitcoindServer
from tests.support.bns_scenarios import NAMESPACE, build_scenario
from tests.support.index_cli import cli, sync_args, write_config
from tests.support.dns_fixtures import bns_only_config, free_port
from tests.support.netns import wait_until

pytestmark = pytest.mark.timeout(240)

EXTRA = 400
CLI = [sys.executable, "-m", "bns_resolver.cli"]


def _can_mount_tmpfs() -> bool:
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


def _require_tmpfs() -> None:
    if not _can_mount_tmpfs():
        pytest.skip("needs `unshare -m`, `nsenter` and a tmpfs mount (root in a container or VM)")


def _larger_export(folder: Path) -> Path:
    """The embedded export with EXTRA more names under `id`, each with a 2 KB zone file."""
    shutil.copytree(EMBEDDED_DIR, folder)
    for digest in ("chainstate.txt.sha256", "name_zonefiles.txt.sha256"):
        (folder / digest).unlink()
    owner = next(line for line in (folder / "chainstate.txt").read_text().splitlines() if line.startswith("0.id,"))
    address = owner.split(",")[1]
    zonefiles = [b"$ORIGIN extra%d.id\\n$TTL 3600\\n@ IN A 192.0.2.77\\n" % n + b"; filler\\n" * 200
                 for n in range(EXTRA)]
    hashes = [hash160(z.replace(b"\\n", b"\n")).hex() for z in zonefiles]
    rows = "".join(f"extra{n}.id,{address},{h}\n" for n, h in enumerate(hashes))
    chainstate = (folder / "chainstate.txt").read_text().replace("-----END NAMES-----", rows + "-----END NAMES-----")
    (folder / "chainstate.txt").write_text(chainstate)
    listing = folder / "name_zonefiles.txt"
    pairs = b"".join(h.encode() + b"\n" + z + b"\n" for h, z in zip(hashes, zonefiles, strict=True))
    listing.write_bytes(listing.read_bytes().rstrip(b"\n") + b"\n" + pairs)
    return folder


def _disk_usage(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


class _ServeOnTmpfs:
    """`serve` in a mount namespace of its own, its data dir on a tmpfs of `size` bytes."""

    def __init__(self, data: Path, mount: Path, size: int, config: Path) -> None:
        self.port, self.mount, self.log_path = free_port(), mount, mount.with_name("serve.log")
        script = (f"mount -t tmpfs -o size={size} tmpfs {mount} && cp -a {data}/. {mount}/ && "
                  f"exec {' '.join(CLI)} serve --config {config} --data-dir {mount} --log-level INFO "
                  f"--listen 127.0.0.1:{self.port} --web-listen 127.0.0.1:0 --upstream 127.0.0.1:9")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def inside(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command in the server's mount namespace (it sees the tmpfs)."""
        return subprocess.run(["nsenter", f"--mount=/proc/{self.process.pid}/ns/mnt", "--", *argv],
                              capture_output=True, text=True, timeout=120, check=False)

    def a_records(self, name: str, rdtype: str = "A") -> tuple[int, list[str]]:
        reply = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=self.port, timeout=3)
        return reply.rcode(), sorted(rd.to_text() for rrset in reply.answer
                                     if rrset.rdtype == dns.rdatatype.from_text(rdtype) for rd in rrset)

    def answers(self, apex: str) -> bool:
        assert self.process.poll() is None, self.log()
        try:
            return self.a_records(apex, "SOA")[0] == dns.rcode.NOERROR
        except (dns.exception.Timeout, OSError):
            return False

    def status(self) -> dict[str, object]:
        shown = self.inside(*CLI, "status", "--json", "--data-dir", str(self.mount))
        assert shown.returncode == 0, shown.stderr
        status: dict[str, object] = json.loads(shown.stdout)
        return status

    def used(self) -> int:
        """Bytes in use on the tmpfs."""
        shown = self.inside("stat", "-f", "-c", "%b %f %S", str(self.mount))
        blocks, free, size = (int(v) for v in shown.stdout.split())
        return (blocks - free) * size

    def resize(self, size: int) -> None:
        done = self.inside("mount", "-o", f"remount,size={size}", str(self.mount))
        assert done.returncode == 0, done.stderr

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        self._log.close()
        return code


@contextmanager
def _serving(data: Path, tmp_path: Path, spare: int, config_text: str, apex: str) -> Iterator[_ServeOnTmpfs]:
    config = tmp_path / "serve.toml"
    config.write_text(config_text)
    mount = tmp_path / "mnt"
    mount.mkdir()
    server = _ServeOnTmpfs(data, mount, _disk_usage(data) + spare, config)
    try:
        wait_until(lambda: server.answers(apex) or None, timeout=60, what="serve on the tmpfs to answer")
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def test_full_disk_during_import_keeps_serving_the_old_index(tmp_path: Path) -> None:
    _require_tmpfs()
    data, export = tmp_path / "data", _larger_export(tmp_path / "export")
    for step in (("import-snapshot",), ("compile",)):
        done = cli(*step, "--data-dir", str(data))
        assert done.returncode == 0, done.stderr
    config = bns_only_config(["id", "blockstack", "graphite", "helloworld", "podcast"])
    with _serving(data, tmp_path, 1024 * 1024, config, "id.") as server:
        before = server.status()
        known = server.a_records("_http._tcp.zone117x.id.", "URI")
        assert known[0] == dns.rcode.NOERROR and known[1]
        assert server.a_records("extra0.id.")[0] == dns.rcode.NXDOMAIN

        failed = server.inside(*CLI, "import-snapshot", str(export), "--data-dir", str(server.mount))
        lines = [line for line in failed.stderr.strip().splitlines() if " INFO " not in line]  # progress lines aside
        assert failed.returncode == 2 and len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
        assert "disk is full" in lines[0] and "the index was left as it was" in lines[0], lines[0]

        for name in ("extra0.id.", f"extra{EXTRA - 1}.id."):
            assert server.a_records(name)[0] == dns.rcode.NXDOMAIN  # nothing half-loaded
        assert server.a_records("_http._tcp.zone117x.id.", "URI") == known
        after = server.status()
        assert {k: after[k] for k in ("names", "zonefiles", "height")} == \
            {k: before[k] for k in ("names", "zonefiles", "height")}

        # With room, the same import goes through and the server picks it up by itself.
        server.resize(64 * 1024 * 1024)
        loaded = server.inside(*CLI, "import-snapshot", str(export), "--data-dir", str(server.mount))
        assert loaded.returncode == 0, loaded.stderr
        wait_until(lambda: server.a_records("extra0.id.") == (dns.rcode.NOERROR, ["192.0.2.77"]) or None,
                   timeout=30, what="the server to answer from the new import")
        assert server.process.poll() is None
        assert "Traceback" not in server.log(), server.log()[-3000:]
        assert server.stop() == 0


def _sync_failure(server: _ServeOnTmpfs) -> str | None:
    return next((line for line in server.log().splitlines() if "chain sync failed" in line), None)


def test_full_disk_during_sync_keeps_serving_whole_blocks_and_resumes(tmp_path: Path) -> None:
    """serve syncs on a nearly full disk: the round fails with one line, the server keeps answering
    from its last flushed block (never from half a block), and with room it syncs on to the tip
    and ends at a clean sync's height and consensus hash."""
    _require_tmpfs()
    scenario = build_scenario(tail_blocks=40)  # 40 more blocks after alice's update: room to run out
    folder = scenario.write_zonefiles(tmp_path / "zonefiles")
    data, clean, sync_config = tmp_path / "data", tmp_path / "clean", write_config(tmp_path / "sync.toml")
    with BitcoindServer(chain="regtest") as node:
        node.set_chain(scenario.chain.blocks[:263], scenario.chain.chain.external_prevouts)
        assert cli(*sync_args(node.url, data, sync_config, folder)).returncode == 0
        config = (f'[namespaces]\nicann_tlds = {{ {NAMESPACE} = false }}\n'
                  f'[chain]\nbitcoind = "{node.url}"\nnetwork = "regtest"\nconfirmations = 1\npoll_interval = 0.5\n'
                  f'[zonefiles]\nsources = ["dir:{folder}"]\n')
        with _serving(data, tmp_path, 64 * 1024 * 1024, config, f"{NAMESPACE}.") as server:
            wait_until(lambda: server.a_records(f"alice.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.1"]) or None,
                       timeout=30, what="alice's answer once the first round is done")
            server.resize(server.used() + 48 * 1024)  # the disk is now nearly full
            node.serve_builder(scenario.chain.chain)
            wait_until(lambda: _sync_failure(server), timeout=60, what="a sync round to hit the full disk")
            line = _sync_failure(server) or ""
            assert "database or disk is full; it keeps its last flushed block" in line and len(line) < 500, line
            height = server.status()["height"]
            assert isinstance(height, int) and 262 <= height < node.tip_height
            assert server.a_records(f"alice.{NAMESPACE}.") == (dns.rcode.NOERROR, ["192.0.2.1"])
            assert server.process.poll() is None

            server.resize(64 * 1024 * 1024)
            wait_until(lambda: server.status()["height"] == node.tip_height or None, timeout=60,
                       what="the sync to resume to the tip")
            wait_until(lambda: server.a_records(f"carol.{NAMESPACE}.")[0] == dns.rcode.NXDOMAIN or None,
                       timeout=30, what="carol's revoke to be served")
            resumed = server.status()
            assert "Traceback" not in server.log(), server.log()[-3000:]
            assert server.stop() == 0
        assert cli(*sync_args(node.url, clean, sync_config, folder)).returncode == 0
    fresh = json.loads(cli("status", "--json", "--data-dir", str(clean)).stdout)
    assert (resumed["height"], resumed["consensus_hash"]) == (fresh["height"], fresh["consensus_hash"])
