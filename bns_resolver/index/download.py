"""Download of the export tarball: resumable (HTTP Range), with progress, checked before use.

The partial file sits in the data directory as `export-data.tar.gz.part`; a cut connection
(or a killed command) leaves it there and the next attempt asks only for the missing bytes.
A server that ignores the Range header sends the whole file again, and we start over. The
finished file is checked against a pinned SHA-256 before anything reads it; a mismatch
deletes it, so a tampered copy is never loaded and never resumed from.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from bns_resolver.errors import SnapshotError
from bns_resolver.index.progress import ByteProgress

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
ATTEMPTS = 6


def download_export(url: str, data_dir: Path, *, sha256: str | None = None, attempts: int = ATTEMPTS,
                    timeout: float = 60.0, progress: bool = True, retry_delay: float = 1.0) -> Path:
    """Fetch `url` to data_dir/export-data.tar.gz, resuming after cuts; check `sha256` if given."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "export-data.tar.gz"
    partial = target.with_name(target.name + ".part")
    for attempt in range(1, attempts + 1):
        try:
            if _fetch(url, partial, timeout, progress):
                break
            reason = "the connection closed before the end of the file"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                raise SnapshotError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
            reason = str(getattr(exc, "reason", None) or exc)
        if attempt == attempts:
            raise SnapshotError(f"cannot download {url} after {attempts} tries: {reason}; "
                                f"{partial.stat().st_size if partial.exists() else 0} bytes kept in {partial}, "
                                "run the command again to resume")
        log.warning("download of %s interrupted (%s); resuming (try %d of %d)", url, reason, attempt + 1, attempts)
        time.sleep(retry_delay)
    if sha256:
        check_file_digest(partial, sha256, url, delete=True)
    partial.replace(target)
    return target


def check_file_digest(path: Path, expected: str, what: str, *, delete: bool = False) -> None:
    """Raise SnapshotError (after deleting the file, if asked) unless `path` hashes to `expected`."""
    actual = file_sha256(path)
    if actual != expected.strip().lower():
        if delete:
            path.unlink(missing_ok=True)
        raise SnapshotError(f"{what}: sha256 {actual} does not match the pinned {expected.strip().lower()}; "
                            "nothing was loaded")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, partial: Path, timeout: float, progress: bool) -> bool:
    """One request for the bytes `partial` lacks; True once the file is complete."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        reply = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (the user gave the URL)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing past what we hold: the file was already complete
            return True
        raise
    with reply:
        offset, total = _placement(reply, have)
        if total is not None and offset >= total:
            return True
        meter = ByteProgress(f"download {url}", total or 0, done=offset) if progress else None
        with partial.open("r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()
            try:
                _copy(reply, out, meter)
            finally:
                if meter:
                    meter.close()
        size = partial.stat().st_size
    return total is None or size >= total


def _placement(reply: http.client.HTTPResponse, have: int) -> tuple[int, int | None]:
    """(where the reply's bytes start in the file, the file's full size if known)."""
    if reply.status == 206:
        match = _CONTENT_RANGE.fullmatch(reply.headers.get("Content-Range", "").strip())
        if not match or int(match.group(1)) > have:
            raise SnapshotError(f"the server's partial reply does not continue our {have} bytes")
        total = None if match.group(3) == "*" else int(match.group(3))
        return int(match.group(1)), total
    length = reply.headers.get("Content-Length")
    if have:
        log.info("the server ignored the range request; downloading from the start")
    return 0, int(length) if length and length.isdigit() else None


def _copy(reply: IO[bytes], out: IO[bytes], meter: ByteProgress | None) -> None:
    while chunk := reply.read(_CHUNK):
        out.write(chunk)
        if meter:
            meter.advance(len(chunk))
