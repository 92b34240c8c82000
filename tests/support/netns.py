"""Network namespaces for end-to-end tests: create, run programs inside, always clean up.

`ip netns exec NAME` bind-mounts every file in `/etc/netns/NAME/` over the
same file in `/etc` for the program it runs, so a namespace can carry its own
`resolv.conf`, `nsswitch.conf` and `hosts`. That is what lets an unmodified
`getent` (glibc's stub resolver, which only speaks to port 53) ask a server
running inside the namespace, without touching the host's configuration.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

NETNS_ETC = Path("/etc/netns")
NSCD_SOCKETS = (Path("/run/nscd/socket"), Path("/var/run/nscd/socket"))

T = TypeVar("T")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip on a developer machine; fail under CI (CI=true), where a skip would hide a missing install."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"e2e prerequisite missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def unavailable_reason(programs: Sequence[str] = ("ip",)) -> str | None:
    """Why network-namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for program in programs:
        if shutil.which(program) is None:
            return f"{program!r} is not installed"
    for socket_path in NSCD_SOCKETS:
        if socket_path.exists():
            # glibc asks nscd before NSS; nscd lives in the host namespace and would answer for us.
            return f"nscd is running ({socket_path}); getent would bypass the namespace's resolver"
    return None


def wait_until(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05,
               alive: Callable[[], str | None] | None = None) -> T:
    """Poll `probe` until it returns something truthy, for at most `timeout` seconds.

    `alive` returns an error text when a process we wait for has died, so a
    crash fails at once with its reason instead of after the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        dead = alive() if alive else None
        if dead:
            raise AssertionError(f"gave up waiting for {what}: {dead}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


class NetNs:
    """One uniquely named network namespace with `lo` up and its own /etc overrides."""

    def __init__(self, prefix: str = "bnse2e") -> None:
        self.name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        self.etc = NETNS_ETC / self.name
        self._created_etc_root = False
        self._processes: list[subprocess.Popen[Any]] = []
        self._added = False

    def create(self, etc_files: dict[str, str] | None = None, *, lan_address: str | None = None) -> NetNs:
        """Add the namespace and write its /etc overrides; on any failure, undo what was done.

        `lan_address` (CIDR) puts a non-loopback IPv4 address on a veth pair inside the
        namespace. Without one, getaddrinfo with AI_ADDRCONFIG (what `getent ahostsv4`,
        curl and browsers use) returns no IPv4 address at all, without even asking DNS.
        """
        try:
            _run(["ip", "netns", "add", self.name])
            self._added = True
            _run(["ip", "-n", self.name, "link", "set", "lo", "up"])
            if lan_address:
                self._add_lan(lan_address)
            if etc_files:
                self._created_etc_root = not NETNS_ETC.exists()
                self.etc.mkdir(parents=True, exist_ok=False)
                for filename, content in etc_files.items():
                    (self.etc / filename).write_text(content)
        except BaseException:
            self.delete()
            raise
        return self

    def _add_lan(self, address: str) -> None:
        # A veth pair with both ends inside: needs no kernel module beyond veth, leaks nothing outside.
        _run(["ip", "-n", self.name, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"])
        _run(["ip", "-n", self.name, "addr", "add", address, "dev", "lan0"])
        for device in ("lan0", "lan1"):
            _run(["ip", "-n", self.name, "link", "set", device, "up"])

    def argv(self, command: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, command: Sequence[str], *, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and collect its output (never raises on exit status)."""
        argv = self.argv(command)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def popen(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a long-running program inside the namespace; `delete` stops it.

        `ip netns exec` execs the program in place, so the Popen's pid is the program's own.
        """
        process = subprocess.Popen(self.argv(command), **kwargs)
        self._processes.append(process)
        return process

    def delete(self) -> None:
        """Stop what we started, remove the namespace and its /etc overrides. Safe to call twice."""
        for process in self._processes:
            _stop(process)
        self._processes.clear()
        if self._added:
            self._kill_stragglers()
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)
            self._added = False
        if self.etc.exists():
            shutil.rmtree(self.etc, ignore_errors=True)
        if self._created_etc_root:
            try:
                NETNS_ETC.rmdir()  # only if empty: another namespace may have appeared meanwhile
            except OSError:
                pass
            self._created_etc_root = False

    def _kill_stragglers(self) -> None:
        """Children of our programs still inside the namespace (started only by this test)."""
        argv = ["ip", "netns", "pids", self.name]
        listed = subprocess.run(argv, capture_output=True, text=True, check=False)
        for pid in listed.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def __enter__(self) -> NetNs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def start(netns: NetNs, command: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a program inside `netns` with stdout and stderr going to `log_path`."""
    with log_path.open("wb") as log_file:
        return netns.popen(command, stdout=log_file, stderr=subprocess.STDOUT)


def dig_short(netns: NetNs, server: tuple[str, int], name: str, rdtype: str = "A") -> list[str]:
    """The answer's rdata from inside `netns` (empty on no answer or error); one quick try."""
    host, port = server
    command = ["dig", "+short", "+time=1", "+tries=1", f"@{host}", "-p", str(port), name, rdtype]
    result = netns.run(command, timeout=5)
    lines = [line for line in result.stdout.splitlines() if not line.startswith(";")]
    return lines if result.returncode == 0 else []


def await_answer(netns: NetNs, process: subprocess.Popen[bytes], server: tuple[str, int], name: str,
                 expected: str, *, what: str, log_path: Path, timeout: float = 20.0) -> None:
    """Poll `server` until it answers `name` A with `expected`; fail early if `process` dies."""
    def exited() -> str | None:
        code = process.poll()
        return None if code is None else f"{what} exited with status {code}"

    try:
        wait_until(lambda: expected in dig_short(netns, server, name), timeout=timeout,
                   what=f"{what} to answer {name} on {server[0]}:{server[1]}", alive=exited)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- {what} log ---\n{tail(log_path)}") from None


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")


def _stop(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
