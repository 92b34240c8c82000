"""Progress of a long byte-counted job (an import, a download): a bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)

_MIB = 1 << 20
_BAR = 30


class ByteProgress:
    """Counts bytes done out of a known total (0: unknown) and shows it at most every `every` seconds."""

    def __init__(self, what: str, total: int, *, done: int = 0, stream: TextIO | None = None,
                 every: float | None = None) -> None:
        self.what, self.total, self.done = what, total, done
        self.stream = sys.stderr if stream is None else stream
        self._tty = self.stream.isatty()
        # A bar redraws often; a log file gets a line every few seconds.
        self.every = every if every is not None else (0.2 if self._tty else 5.0)
        self._started = time.monotonic()
        self._first = done
        self._last = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._show(now)

    def close(self) -> None:
        self._show(time.monotonic())
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        rate = (self.done - self._first) / elapsed
        text = f"{self.what}: {self.done / _MIB:,.1f}"
        if self.total:
            share = min(self.done / self.total, 1.0)
            eta = (self.total - self.done) / rate if rate else 0.0
            filled = int(share * _BAR)
            bar = "[" + "#" * filled + "." * (_BAR - filled) + "] " if self._tty else ""
            return f"{bar}{text}/{self.total / _MIB:,.1f} MiB {share:.0%} {rate / _MIB:.1f} MiB/s ETA {eta:.0f} s"
        return f"{text} MiB {rate / _MIB:.1f} MiB/s"

    def _show(self, now: float) -> None:
        if self._tty:
            self.stream.write("\r" + self.line(now).ljust(79))
            self.stream.flush()
        else:
            log.info("%s", self.line(now))
