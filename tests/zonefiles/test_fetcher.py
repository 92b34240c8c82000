from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from twisted.internet.task import Clock

from bns_resolver.hashing import hash160
from bns_resolver.index.schema import names, zonefile_wants
from bns_resolver.zonefiles.fetcher import (
    BackoffPolicy,
    FetchService,
    FetchSettings,
    SourceHealthBook,
    ZoneFileFetcher,
    fetch_round,
    missing_zonefiles,
)
from bns_resolver.zonefiles.sources import AtlasSource, DirSource, HttpSource
from bns_resolver.zonefiles.store import get_zonefile, store_verified
from tests.support.zonefile_servers import AtlasStub, ZonefileHttpMirror

NOW = 1_700_000_000.0


def _zonefile(name: str) -> bytes:
    return f'$ORIGIN {name}\n$TTL 3600\n_http._tcp\tIN\tURI\t10\t1\t"https://gaia.example/{name}"\n\n'.encode()


FILES = {hash160(_zonefile(n)).hex(): _zonefile(n) for n in ("alice.id", "bob.id", "carol.id")}
BY_NAME = {n: hash160(_zonefile(n)).hex() for n in ("alice.id", "bob.id", "carol.id")}


def _add_names(engine: Engine, mapping: dict[str, str | None]) -> None:
    with engine.begin() as conn:
        for fqn, value_hash in mapping.items():
            conn.execute(names.insert().values(fqn=fqn, namespace_id="id", value_hash=value_hash, revoked=False))


def _want_row(engine: Engine, zonefile_hash: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(zonefile_wants).where(zonefile_wants.c.zonefile_hash == zonefile_hash)).first()


@pytest.fixture()
def indexed(engine: Engine) -> Engine:
    _add_names(engine, BY_NAME)
    return engine


def test_missing_zonefiles_skips_zero_null_and_held(engine: Engine) -> None:
    """Only referenced, non-zero, not-yet-held hashes are wanted, each with its name."""
    _add_names(engine, {"alice.id": BY_NAME["alice.id"], "bob.id": BY_NAME["bob.id"], "z.id": "0" * 40, "n.id": None})
    store_verified(engine, BY_NAME["bob.id"], FILES[BY_NAME["bob.id"]], "test")
    with engine.connect() as conn:
        wants = missing_zonefiles(conn, now=NOW, limit=100)
    assert [(w.zonefile_hash, w.name) for w in wants] == [(BY_NAME["alice.id"], "alice.id")]


def test_missing_zonefiles_includes_wants_table(engine: Engine) -> None:
    """A hash only in zonefile_wants (e.g. an old value hash) is fetched too."""
    with engine.begin() as conn:
        conn.execute(zonefile_wants.insert().values(zonefile_hash="ab" * 20, attempts=0, next_attempt_at=0.0))
    with engine.connect() as conn:
        assert [w.zonefile_hash for w in missing_zonefiles(conn, now=NOW, limit=100)] == ["ab" * 20]


def test_round_stores_from_good_mirror_and_calls_hook(indexed: Engine) -> None:
    """A good HTTP mirror fills every missing file; on_stored fires once per stored hash."""
    seen: list[str] = []
    with ZonefileHttpMirror(FILES) as mirror:
        report = fetch_round(indexed, [HttpSource(mirror.template())], on_stored=seen.append, now=NOW)
    assert sorted(seen) == sorted(FILES) == sorted(report.stored)
    assert report.still_missing == () and report.rejected == ()
    assert all(get_zonefile(indexed, h) == content for h, content in FILES.items())


def test_lying_source_is_rejected_scored_down_and_logged(indexed: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """A liar's files are refused (logged with source and hash), it drops behind, and the honest mirror wins."""
    health = SourceHealthBook()
    with ZonefileHttpMirror(FILES, mode="lying") as liar, ZonefileHttpMirror(FILES) as honest:
        sources = [HttpSource(liar.template()), HttpSource(honest.template())]
        with caplog.at_level(logging.WARNING, logger="bns_resolver.zonefiles.fetcher"):
            report = fetch_round(indexed, sources, health=health, now=NOW)
    assert sorted(report.stored) == sorted(FILES)
    assert {r.source for r in report.rejected} == {liar.template()}
    assert any(liar.template() in m and BY_NAME["alice.id"] in m for m in caplog.messages)
    assert health[liar.template()].bad_files == 3 and health[liar.template()].score < 0.5
    assert [s.label for s in health.order(sources)] == [honest.template(), liar.template()]


def test_lying_source_alone_stores_nothing(indexed: Engine) -> None:
    """With only a liar, nothing is stored and each hash records the mismatch for backoff."""
    with ZonefileHttpMirror(FILES, mode="lying") as liar:
        report = fetch_round(indexed, [HttpSource(liar.template())], now=NOW)
    assert report.stored == () and len(report.rejected) == 3
    assert all(get_zonefile(indexed, h) is None for h in FILES)
    row = _want_row(indexed, BY_NAME["alice.id"])
    assert row.attempts == 1 and "hash to" in row.last_error


def test_dead_source_backs_off_exponentially(indexed: Engine) -> None:
    """A dead source sets attempts/next_attempt_at; the hash is skipped until due, then the delay doubles."""
    settings = FetchSettings(timeout=2, backoff=BackoffPolicy(base=60, factor=2))
    with ZonefileHttpMirror(FILES) as mirror:
        template = mirror.template()
    source = HttpSource(template)
    fetch_round(indexed, [source], settings=settings, now=NOW)
    row = _want_row(indexed, BY_NAME["alice.id"])
    assert (row.attempts, row.next_attempt_at) == (1, NOW + 60)
    assert "refused" in row.last_error.lower() or "connect" in row.last_error.lower()
    assert fetch_round(indexed, [source], settings=settings, now=NOW + 30).wanted == 0
    assert fetch_round(indexed, [source], settings=settings, now=NOW + 61).wanted == 3
    row = _want_row(indexed, BY_NAME["alice.id"])
    assert (row.attempts, row.next_attempt_at) == (2, NOW + 61 + 120)


def test_slow_source_times_out_and_next_source_serves(indexed: Engine) -> None:
    """A mirror that never answers costs one timeout; the next source still fills the files."""
    health = SourceHealthBook()
    settings = FetchSettings(timeout=0.3)
    with ZonefileHttpMirror(FILES, mode="slow") as slow, ZonefileHttpMirror(FILES) as good:
        sources = [HttpSource(slow.template()), HttpSource(good.template())]
        report = fetch_round(indexed, sources, settings=settings, health=health, now=NOW)
    assert sorted(report.stored) == sorted(FILES)
    assert health[slow.template()].failures == 1 and health[slow.template()].served == 0


def test_dir_source_round(indexed: Engine, tmp_path: Path) -> None:
    """A dir source in Atlas layout fills the index, with the dir label as `source`."""
    for zonefile_hash, content in FILES.items():
        folder = tmp_path / zonefile_hash[:2] / zonefile_hash[2:4]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{zonefile_hash}.txt").write_bytes(content)
    report = fetch_round(indexed, [DirSource(tmp_path)], now=NOW)
    assert sorted(report.stored) == sorted(FILES)


def test_atlas_round_rejects_tampered_file(indexed: Engine) -> None:
    """Through the Atlas stub, a tampered file is rejected while the genuine ones are stored."""
    bad = BY_NAME["bob.id"]
    with AtlasStub(FILES, tamper={bad: b"$ORIGIN bob.id\n$TTL 1\n"}) as stub:
        source = AtlasSource("127.0.0.1", stub.port)
        report = fetch_round(indexed, [source], now=NOW)
    assert len(stub.calls) == 1 and sorted(stub.calls[0]) == sorted(FILES)
    assert sorted(report.stored) == sorted(h for h in FILES if h != bad)
    assert [r.zonefile_hash for r in report.rejected] == [bad]
    assert report.still_missing == (bad,)


def test_hook_failure_does_not_stop_the_round(indexed: Engine) -> None:
    """An exception in on_stored is logged; every file is still stored."""
    def hook(_: str) -> None:
        raise RuntimeError("cache exploded")

    with ZonefileHttpMirror(FILES) as mirror:
        report = fetch_round(indexed, [HttpSource(mirror.template())], on_stored=hook, now=NOW)
    assert len(report.stored) == 3


class _SyncPool:
    def callInThreadWithCallback(self, on_result: Callable[..., None], f: Callable[..., Any], *a: Any, **kw: Any) -> None:  # noqa: N802
        on_result(True, f(*a, **kw))


class _SyncReactor(Clock):
    """A Clock whose 'threads' run inline, so the service can be driven step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.from_thread: list[str] = []

    def getThreadPool(self) -> _SyncPool:  # noqa: N802
        return _SyncPool()

    def callFromThread(self, f: Callable[..., Any], *a: Any, **kw: Any) -> None:  # noqa: N802
        self.from_thread.append(getattr(f, "__name__", "?"))
        f(*a, **kw)


def test_fetch_service_runs_rounds_on_interval(indexed: Engine, tmp_path: Path) -> None:
    """The Twisted wrapper runs a round at start and each interval; in_thread runs in the worker, on_stored via callFromThread."""
    (tmp_path / f"{BY_NAME['alice.id']}.txt").write_bytes(FILES[BY_NAME["alice.id"]])
    reactor = _SyncReactor()
    seen: list[str] = []
    worked: list[str] = []
    fetcher = ZoneFileFetcher(indexed, [DirSource(tmp_path)])
    service = FetchService(fetcher, on_stored=seen.append, in_thread=worked.append, interval=30, reactor=reactor)
    service.start()
    assert seen == worked == [BY_NAME["alice.id"]] and reactor.from_thread[0] == "append"
    (tmp_path / f"{BY_NAME['bob.id']}.txt").write_bytes(FILES[BY_NAME["bob.id"]])
    reactor.advance(30)
    assert service.last_report is not None and service.last_report.wanted == 0
    service.stop()
    assert seen == [BY_NAME["alice.id"]]  # bob's hash is backing off after the first miss


class _CrashingSource:
    label = "crash://"
    batch_size = 10

    def fetch(self, wants: object, *, timeout: float) -> dict[str, bytes]:
        raise KeyError("bug")


def test_crashing_source_is_logged_and_next_source_serves(indexed: Engine, tmp_path: Path) -> None:
    """An unexpected exception in one source is logged and counted; later sources still fill the files."""
    for zonefile_hash, content in FILES.items():
        (tmp_path / zonefile_hash).write_bytes(content)
    health = SourceHealthBook()
    report = fetch_round(indexed, [_CrashingSource(), DirSource(tmp_path)], health=health, now=NOW)
    assert sorted(report.stored) == sorted(FILES) and health["crash://"].failures == 1


def test_name_only_template_mismatch_is_not_scored_as_a_lie(indexed: Engine) -> None:
    """A `{name}`-only mirror serving another version of the file is refused but not scored down."""
    stale = {name: _zonefile(name) + b"; newer\n" for name in BY_NAME}
    health = SourceHealthBook()
    with ZonefileHttpMirror(stale) as mirror:
        source = HttpSource(mirror.template("{name}"))
        report = fetch_round(indexed, [source], health=health, now=NOW)
    assert report.stored == () and len(report.rejected) == 3
    assert health[source.label].bad_files == 0 and health[source.label].score == 1.0


class _CountingDeadSource:
    label = "dead://"
    batch_size = 1

    def __init__(self) -> None:
        self.calls = 0
        self.never = threading.Event()  # a blackholed peer: nothing ever arrives

    def fetch(self, wants: object, *, timeout: float) -> dict[str, bytes]:
        from bns_resolver.zonefiles.sources import SourceUnavailable

        self.calls += 1
        self.never.wait(timeout)
        raise SourceUnavailable("dead://: timed out")


def test_failing_source_is_skipped_for_the_rest_of_the_round(engine: Engine) -> None:
    """After its first batches all fail, a source's queued batches are cancelled instead of each timing out."""
    _add_names(engine, {f"n{i}.id": f"{i:040x}" for i in range(1, 41)})
    dead = _CountingDeadSource()
    report = fetch_round(engine, [dead], settings=FetchSettings(concurrency=2, timeout=0.2), now=NOW)
    assert len(report.still_missing) == 40
    assert dead.calls <= 6  # two failed batches, plus at most those the two workers had already started
    row = _want_row(engine, f"{40:040x}")
    assert row.attempts == 1 and row.last_error
