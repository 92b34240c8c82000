"""Periodic jobs that outlive their failures.

A bare LoopingCall stops for good at the first exception its job raises; the index check would then
never notice a change again after, say, PostgreSQL restarting once. Here a failed round is logged
(once a minute per job, without a traceback: the cause is outside our code) and the next round
simply tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.python.failure import Failure

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0


class SurvivingJob:
    """One periodic job: each round runs to completion (a Deferred is waited for) or fails alone."""

    def __init__(self, job: Callable[[], object], clock: Any) -> None:  # an IReactorTime
        self.job = job
        self._now: Callable[[], float] = clock.seconds
        self.name = getattr(job, "__name__", repr(job))
        self.failures = 0
        self._last_logged = float("-inf")

    def __call__(self) -> defer.Deferred[Any]:
        return defer.maybeDeferred(self.job).addCallbacks(self._succeeded, self._failed)

    def _succeeded(self, result: object) -> object:
        if self.failures:
            log.info("periodic %s works again after %d failed rounds", self.name, self.failures)
            self.failures, self._last_logged = 0, float("-inf")
        return result

    def _failed(self, failure: Failure) -> None:
        self.failures += 1
        now = self._now()
        if now - self._last_logged >= LOG_EVERY_SECONDS:
            self._last_logged = now
            reason = failure.getErrorMessage().splitlines()[0] if failure.getErrorMessage() else failure.type
            log.warning("periodic %s failed (%d rounds so far), retrying every round: %s",
                        self.name, self.failures, reason)


def every(seconds: float, job: Callable[[], object], clock: Any) -> task.LoopingCall:
    """Start `job` now and every `seconds` on `clock`; failures never stop it."""
    loop = task.LoopingCall(SurvivingJob(job, clock))
    loop.clock = clock
    loop.start(seconds, now=True).addErrback(lambda f: log.error("periodic %s stopped: %s",
                                                                 getattr(job, "__name__", job), f.getTraceback()))
    return loop
