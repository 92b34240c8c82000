"""Shared fixtures: real server processes on loopback, stub upstreams, test indexes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.upstream_stub import StubUpstream, UpstreamBehaviour

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GENESIS_DIR = SHARED_DATA / "bns-genesis"


@pytest.fixture
def upstream() -> Iterator[StubUpstream]:
    stub = StubUpstream(UpstreamBehaviour(
        records={("example.com", "A"): ["example.com. 300 IN A 93.184.216.34"],
                 ("kompas.id", "A"): ["kompas.id. 300 IN A 203.0.113.7"]},
        tlds={"id", "com"},
    )).start()
    yield stub
    stub.stop()


@pytest.fixture
def stubs() -> Iterator[list[StubUpstream]]:
    """Stub upstreams a test starts (append them); all stopped afterwards."""
    started: list[StubUpstream] = []
    yield started
    for stub in started:
        stub.stop()


@pytest.fixture
def genesis_dir() -> Path:
    if not GENESIS_DIR.is_dir():
        pytest.skip(f"shared BNS data not found at {GENESIS_DIR}")
    return GENESIS_DIR
