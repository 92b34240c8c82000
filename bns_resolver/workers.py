"""DNS worker processes for `[dns] workers = N`: started, watched and stopped by `serve`.

`serve` binds N socket copies of each listen address (dns/reuseport.py), serves one itself and
starts N-1 workers, each a fresh interpreter (`python -m bns_resolver.cli dns-worker`, never a
fork of a process that has a reactor, threads and database connections) that inherits its
copies as descriptors. What a worker needs arrives as one JSON line on its stdin (`WorkerBrief`):
`serve`'s effective settings as TOML, its descriptors, and the address each listener hands out
for the web gateway. The pipe then stays open without another byte: when `serve` ends, however
it ends (SIGKILL included), the kernel closes it and the worker sees end-of-file and stops.

A worker that exits is started again on the same descriptors, after a pause that doubles with
each quick exit (a worker that cannot start must not spin the CPU); `stop` ends them all.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any

from bns_resolver.errors import GatewayError

if TYPE_CHECKING:  # the CLI imports this module for WORKER_COMMAND: keep Twisted out of its start
    from bns_resolver.dns.reuseport import ListenCopy

log = logging.getLogger(__name__)

WORKER_COMMAND = "dns-worker"  # the hidden CLI entry (cli.py), not in --help: only `serve` starts it
CHECK_SECONDS = 0.5  # how often exits are looked for
FIRST_PAUSE = 0.5  # seconds before a worker is started again; doubled per quick exit
MAX_PAUSE = 30.0
STEADY_SECONDS = 30.0  # a worker that ran this long starts the pauses over
STOP_SECONDS = 3.0  # SIGTERM, then SIGKILL after this


@dataclass(frozen=True)
class Listener:
    """One listen address as a worker serves it."""

    host: str
    port: int
    udp_fd: int
    tcp_fd: int
    web_address: str | None  # the A/AAAA handed out for address-less names asked on it


@dataclass(frozen=True)
class WorkerBrief:
    number: int  # 1 .. count-1 (serve itself is 0)
    count: int
    parent_pid: int
    settings_toml: str  # config_render.render_settings(serve's settings)
    listeners: tuple[Listener, ...]

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def read(cls, stream: IO[bytes]) -> WorkerBrief:
        try:
            raw = json.loads(stream.readline() or b"null")
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            raise GatewayError("no worker brief on stdin (dns-worker is started by `serve`, not by hand)")
        listeners = tuple(Listener(**item) for item in raw.pop("listeners"))
        return cls(listeners=listeners, **raw)


@dataclass
class _Slot:
    number: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pause: float = FIRST_PAUSE
    restart: Any = None  # the pending reactor call that starts it again


@dataclass
class WorkerPool:
    """serve's N-1 workers. `copies[i]` holds worker i's socket copies, one per listen address."""

    reactor: Any
    settings_toml: str
    copies: dict[int, list[ListenCopy]]
    web_addresses: list[str | None]  # per listen address, in the order of each copies list
    on_exit: Callable[[], None] = lambda: None  # e.g. clear the store's reader slots a killed worker held
    slots: dict[int, _Slot] = field(default_factory=dict)
    _loop: Any = None
    stopping: bool = False

    @property
    def count(self) -> int:
        return len(self.copies) + 1

    def start(self) -> None:
        from twisted.internet import task

        for number in sorted(self.copies):
            self.slots[number] = _Slot(number)
            self._spawn(self.slots[number])
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(CHECK_SECONDS, now=False)

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots.values() if slot.process is not None]

    def _brief(self, number: int) -> WorkerBrief:
        listeners = tuple(Listener(c.host, c.port, c.udp.fileno(), c.tcp.fileno(), web)
                          for c, web in zip(self.copies[number], self.web_addresses, strict=True))
        return WorkerBrief(number, self.count, os.getpid(), self.settings_toml, listeners)

    def _spawn(self, slot: _Slot) -> None:
        slot.restart = None
        if self.stopping:
            return
        brief = self._brief(slot.number)
        fds = [fd for listener in brief.listeners for fd in (listener.udp_fd, listener.tcp_fd)]
        process = subprocess.Popen([sys.executable, "-m", "bns_resolver.cli", WORKER_COMMAND],  # noqa: S603
                                   stdin=subprocess.PIPE, pass_fds=fds)
        assert process.stdin is not None
        process.stdin.write(brief.encode())
        process.stdin.flush()  # and kept open: its end-of-file tells the worker serve is gone
        slot.process, slot.started_at = process, time.monotonic()
        log.info("DNS worker %d of %d started (pid %d)", slot.number, self.count - 1, process.pid)

    def check(self) -> None:
        """Start again, after a pause, each worker that exited."""
        for slot in self.slots.values():
            process = slot.process
            if process is None or self.stopping or process.poll() is None:
                continue
            _close_pipe(process)
            slot.process = None
            if time.monotonic() - slot.started_at >= STEADY_SECONDS:
                slot.pause = FIRST_PAUSE
            log.warning("DNS worker %d (pid %d) exited with status %s; starting it again in %.1f s",
                        slot.number, process.pid, process.returncode, slot.pause)
            self.on_exit()
            slot.restart = self.reactor.callLater(slot.pause, self._spawn, slot)
            slot.pause = min(MAX_PAUSE, slot.pause * 2)

    def stop(self) -> None:
        """End every worker (SIGTERM, SIGKILL past STOP_SECONDS); called as serve stops."""
        self.stopping = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        running = []
        for slot in self.slots.values():
            if slot.restart is not None and slot.restart.active():
                slot.restart.cancel()
            if slot.process is not None and slot.process.poll() is None:
                slot.process.terminate()
                running.append(slot.process)
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("DNS worker pid %d did not stop within %g s: killed", process.pid, STOP_SECONDS)
                process.kill()
                process.wait()
        for slot in self.slots.values():
            if slot.process is not None:
                _close_pipe(slot.process)
        for copies in self.copies.values():
            for copy in copies:
                copy.close()


def _close_pipe(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        try:
            process.stdin.close()
        except OSError:
            pass  # the worker is gone: nothing to flush
