"""Rate-limited log lines: a few per period per kind, and a count of what was held back."""

from __future__ import annotations

import logging

import pytest

from bns_resolver.dns.loglimit import LogLimiter


def test_lines_are_limited_per_key_and_held_back_ones_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limiter = LogLimiter(logging.getLogger("test.loglimit"), period=60, burst=2, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.loglimit"):
        written = [limiter.warning("a", "line %d", i) for i in range(5)]
        assert limiter.warning("b", "other kind")
        now[0] = 61.0
        assert limiter.warning("a", "after the period")
    assert written == [True, True, False, False, False]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["line 0", "line 1", "other kind",
                        "after the period (3 similar lines held back in the last 60 s)"]
