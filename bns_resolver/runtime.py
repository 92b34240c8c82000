"""Finding and asking a running server: the runtime file in its data dir, and its /status.json.

`serve` writes `<data dir>/server.json` (its pid and the operations endpoint's real
addresses, ports the kernel picked included) once it listens, and removes it when it
stops; `bns-resolver status` reads it, checks the pid is alive, and asks the endpoint.
A file left by a killed server is recognised by its dead pid and reported as such.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_FILE = "server.json"
ASK_TIMEOUT = 2.0  # seconds: a live server answers /status.json from memory


@dataclass(frozen=True)
class RunningServer:
    pid: int
    endpoints: tuple[str, ...]  # base URLs of the operations endpoint, e.g. http://127.0.0.1:40123


def runtime_path(data_dir: Path) -> Path:
    return data_dir / RUNTIME_FILE


def write_runtime(data_dir: Path, endpoints: list[str]) -> None:
    """Record this process as the data dir's running server (atomically: a reader never sees half)."""
    path = runtime_path(data_dir)
    temporary = path.with_name(f".{RUNTIME_FILE}.{os.getpid()}")
    temporary.write_text(json.dumps({"pid": os.getpid(), "endpoints": endpoints}))
    os.replace(temporary, path)


def remove_runtime(data_dir: Path) -> None:
    """Forget the runtime file if it is ours (another server may have taken the data dir since)."""
    path = runtime_path(data_dir)
    found = _read(path)
    if found is not None and found.pid == os.getpid():
        path.unlink(missing_ok=True)


def find_running(data_dir: Path) -> tuple[RunningServer | None, str]:
    """The data dir's running server, or None and why there is none."""
    path = runtime_path(data_dir)
    found = _read(path)
    if found is None:
        return None, f"no server is running on this data dir (no {path})"
    if not _alive(found.pid):
        return None, f"no server is running on this data dir (pid {found.pid} in {path} has exited)"
    if not found.endpoints:
        return None, (f"a server is running (pid {found.pid}) without a status endpoint ([metrics] listen = []): "
                      "only the database can be reported")
    return found, ""


def ask_running(server: RunningServer, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
    """The running server's /status.json; raises OSError with a one-line reason when it cannot be had."""
    problems = []
    for base in server.endpoints:
        try:
            with urllib.request.urlopen(f"{base}/status.json", timeout=timeout) as response:  # noqa: S310
                document = json.loads(response.read())
            if isinstance(document, dict):
                return document
            problems.append(f"{base}: not a status document")
        except urllib.error.HTTPError as exc:
            problems.append(f"{base}: HTTP {exc.code} (is 127.0.0.1 in [dns] allow?)" if exc.code == 403
                            else f"{base}: HTTP {exc.code}")
        except (OSError, ValueError) as exc:
            problems.append(f"{base}: {getattr(exc, 'reason', exc)}")
    raise OSError(f"server pid {server.pid} did not answer: {'; '.join(problems)}")


def _read(path: Path) -> RunningServer | None:
    try:
        raw = json.loads(path.read_text())
        return RunningServer(int(raw["pid"]), tuple(str(e) for e in raw.get("endpoints", [])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but another user's (e.g. the service user)
    return True
