"""Log lines that a client or an upstream can trigger, limited so they cannot flood the log.

A LAN client at a few thousand packets per second, or an upstream sending junk,
must not turn into megabytes of log per second. Each kind of event (a key) may
log a few lines per period; what is held back is counted and reported with the
next line of that kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class LogLimiter:
    def __init__(self, logger: logging.Logger, *, period: float = 60.0, burst: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._period = period
        self._burst = burst
        self._clock = clock
        self._windows: dict[str, list[float | int]] = {}  # key -> [window start, lines, held back]

    def log(self, level: int, key: str, message: str, *args: object, exc_info: bool = False) -> bool:
        """Log unless this key has used its lines for the period; True when the line was written."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self._period:
            held_back = int(window[2]) if window is not None else 0
            if len(self._windows) > 1024:
                self._windows.clear()  # keys are a small fixed set; this only bounds a mistake
            self._windows[key] = window = [now, 0, 0]
            if held_back:
                message += f" ({held_back} similar lines held back in the last {self._period:g} s)"
        if window[1] >= self._burst:
            window[2] += 1
            return False
        window[1] += 1
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, message, *args)

    def error(self, key: str, message: str, *args: object, exc_info: bool = False) -> bool:
        return self.log(logging.ERROR, key, message, *args, exc_info=exc_info)

    def info(self, key: str, message: str, *args: object) -> bool:
        return self.log(logging.INFO, key, message, *args)
