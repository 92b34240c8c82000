"""Starting and stopping the servers under test (ours, Unbound, the upstream stub), bounded in time."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from measure import pinned, wait_for_answer

STOP_TIMEOUT = 10.0


@dataclass
class Server:
    label: str
    proc: subprocess.Popen[bytes]
    port: int
    startup: float | None = None  # seconds from exec to the first good answer

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


class Processes:
    """Everything this run started, so that it is all stopped on the way out."""

    def __init__(self) -> None:
        self.running: list[Server] = []

    def start(self, label: str, argv: list[str], port: int, log: Path, *, cpu: int | None,
              probe: tuple[str, int] | None, limit: float = 120.0) -> Server:
        log.parent.mkdir(parents=True, exist_ok=True)
        ensure_free(port)
        with log.open("wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(pinned(cpu, argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        server = Server(label, proc, port)
        self.running.append(server)
        if probe is not None:
            try:
                server.startup = wait_for_answer(port, probe[0], probe[1], started, proc=proc, limit=limit)
            except RuntimeError as exc:
                raise RuntimeError(f"{label}: {exc}; see {log}") from None
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def stop_all(self) -> None:
        for server in reversed(list(self.running)):
            self.stop(server)


def ensure_free(port: int) -> None:
    """Refuse to measure whatever else already listens on our port."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise RuntimeError(f"127.0.0.1:{port} is in use ({exc}); stop that or pass --port-base") from None


def ours_argv(data_dir: Path, port: int, upstream_port: int, config: Path) -> list[str]:
    exe = shutil.which("bns-resolver")
    base = [exe] if exe else [sys.executable, "-m", "bns_resolver.cli"]
    return [*base, "serve", "--config", str(config), "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream_port}"]


def ours_compile_argv(data_dir: Path, config: Path) -> list[str]:
    """`bns-resolver compile`: the answer store, built before a server is measured."""
    exe = shutil.which("bns-resolver")
    base = [exe] if exe else [sys.executable, "-m", "bns_resolver.cli"]
    return [*base, "compile", "--config", str(config), "--data-dir", str(data_dir)]


def unbound_argv(conf: Path) -> list[str]:
    return [shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(conf)]


def ours_config(path: Path, icann_tlds: dict[str, bool]) -> Path:
    pairs = ", ".join(f"{ns} = {'true' if shared else 'false'}" for ns, shared in sorted(icann_tlds.items()))
    path.write_text(f"[namespaces]\nicann_tlds = {{ {pairs} }}\n")
    return path
