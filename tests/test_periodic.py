"""Periodic jobs keep running after a failed round (a database restarting, descriptors running out)."""

from __future__ import annotations

import logging

import pytest
from twisted.internet.task import Clock

from bns_resolver.periodic import every


def test_a_failed_round_does_not_stop_the_job(caplog: pytest.LogCaptureFixture) -> None:
    clock, rounds = Clock(), []

    def check_index() -> None:
        rounds.append(clock.seconds())
        if 2 <= clock.seconds() <= 100:
            raise ConnectionError("server closed the connection unexpectedly")

    with caplog.at_level(logging.INFO, logger="bns_resolver.periodic"):
        loop = every(2, check_index, clock)
        clock.pump([2] * 60)
    assert loop.running and len(rounds) == 61  # at 0, 2, …, 120: none skipped
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # 50 failed rounds over 98 s: logged once a minute, one line each, no traceback.
    assert len(warnings) == 2 and "server closed the connection unexpectedly" in warnings[0]
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in caplog.records)
    assert any("works again after 50 failed rounds" in r.getMessage() for r in caplog.records)
    loop.stop()
