"""Process accounting from /proc, readiness probing, and dnsperf runs with their output parsed."""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    # After the comm field: state is fields[0], so utime (14th) is [11] and stime (15th) is [12].
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    return sum(cpu_times(pid))


def host_busy_seconds() -> float:
    """CPU time all CPUs spent busy (not idle/iowait), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and its parts: RssAnon is the process's own (private) memory, RssFile its mapped files'
    pages in the page cache (for us mostly the answer store: shared and reclaimable), RssShmem the rest."""
    return {key: status_kib(pid, key) / 1024 for key in ("VmRSS", "RssAnon", "RssFile", "RssShmem")}


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) <= cpu:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


# --- readiness -------------------------------------------------------------------------------

def build_query(name: str, qtype: int, qid: int) -> bytes:
    wire = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


def ask(port: int, name: str, qtype: int, timeout: float = 0.05) -> int | None:
    """Send one UDP query; return the rcode, or None on timeout/no answer records for NOERROR."""
    qid = int.from_bytes(os.urandom(2), "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(build_query(name, qtype, qid), ("127.0.0.1", port))
            reply, _ = sock.recvfrom(4096)
        except OSError:
            return None
    if len(reply) < 12 or int.from_bytes(reply[0:2], "big") != qid:
        return None
    rcode = reply[3] & 0x0F
    ancount = int.from_bytes(reply[6:8], "big")
    return rcode if rcode != 0 or ancount > 0 else None


def wait_for_answer(port: int, name: str, qtype: int, started: float, *, proc: subprocess.Popen[bytes],
                    limit: float = 120.0) -> float:
    """Seconds from `started` until `name` gets a NOERROR answer with records (bounded)."""
    deadline = started + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        if ask(port, name, qtype) == 0:
            return time.monotonic() - started
        time.sleep(0.005)
    raise RuntimeError(f"no answer for {name} on port {port} within {limit:.0f} s")


# --- dnsperf ---------------------------------------------------------------------------------

@dataclass
class PerfResult:
    qps: float
    completed: int
    sent: int
    lost: int
    rcodes: dict[str, int]
    latencies: list[float] = field(repr=False)
    elapsed: float
    cpu: float = 0.0  # server CPU seconds during the run (user + sys)
    cpu_user: float = 0.0
    cpu_sys: float = 0.0
    client_cpu: float = 0.0  # dnsperf's CPU seconds
    other_cpu: float = 0.0  # everything else on the host meanwhile (noise from other processes)

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def cpu_us_per_query(self) -> tuple[float, float] | None:
        if not self.completed:
            return None
        return self.cpu_user / self.completed * 1e6, self.cpu_sys / self.completed * 1e6

    @property
    def per_cpu_second(self) -> float | None:
        return self.completed / self.cpu if self.cpu > 0 else None


_QPS = re.compile(r"Queries per second:\s+([\d.]+)")
_SENT = re.compile(r"Queries sent:\s+(\d+)")
_COMPLETED = re.compile(r"Queries completed:\s+(\d+)")
_LOST = re.compile(r"Queries lost:\s+(\d+)")
_RUNTIME = re.compile(r"Run time \(s\):\s+([\d.]+)")
_RCODES = re.compile(r"Response codes:\s+(.*)")
_VERBOSE = re.compile(rb"^> (\S+) \S+ \S+ ([\d.]+)$", re.M)


def run_dnsperf(port: int, queries: Path, *, seconds: float, clients: int, outstanding: int,
                rate: int | None = None, max_runs: int | None = None, verbose: bool = True,
                cpu: int | None = 0, log: Path | None = None, server_pid: int | None = None) -> PerfResult:
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(seconds),
            "-c", str(clients), "-q", str(outstanding), "-t", "2"]
    if rate:
        argv += ["-Q", str(rate)]
    if max_runs:
        argv += ["-n", str(max_runs)]
    if verbose:
        argv.append("-v")
    before = cpu_times(server_pid) if server_pid else (0.0, 0.0)
    host_before, client_before = host_busy_seconds(), children_cpu_seconds()
    done = subprocess.run(pinned(cpu, argv), capture_output=True, timeout=seconds + 60, check=False)
    after = cpu_times(server_pid) if server_pid else (0.0, 0.0)
    host_used, client_used = host_busy_seconds() - host_before, children_cpu_seconds() - client_before
    if log is not None:
        # Keep the summary, not hundreds of thousands of per-query lines.
        log.write_bytes(b"\n".join(line for line in done.stdout.splitlines() if not line.startswith(b"> "))
                        + b"\n" + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    user, system = after[0] - before[0], after[1] - before[1]
    result = _parse(done.stdout, user + system)
    result.cpu_user, result.cpu_sys = user, system
    result.client_cpu = client_used
    result.other_cpu = max(0.0, host_used - client_used - result.cpu)
    return result


def _parse(stdout: bytes, cpu: float) -> PerfResult:
    text = "\n".join(line for line in stdout.decode("utf-8", "replace").splitlines() if not line.startswith("> "))

    def number(pattern: re.Pattern[str], default: str = "0") -> str:
        match = pattern.search(text)
        return match.group(1) if match else default

    rcodes: dict[str, int] = {}
    match = _RCODES.search(text)
    if match:
        for code, count in re.findall(r"([A-Z]+) (\d+)", match.group(1)):
            rcodes[code] = int(count)
    latencies = [float(m.group(2)) for m in _VERBOSE.finditer(stdout)]
    return PerfResult(qps=float(number(_QPS)), completed=int(number(_COMPLETED)), sent=int(number(_SENT)),
                      lost=int(number(_LOST)), rcodes=rcodes, latencies=latencies,
                      elapsed=float(number(_RUNTIME)), cpu=cpu)
