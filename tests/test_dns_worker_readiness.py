"""A DNS worker takes serve's readiness verdict from the index (workers do not sync) and, when it
flips, forgets every BNS answer it remembered: a real SQLite index, its real change feed and a real
compiled store; the worker's reactor is Twisted's test clock (no sockets are bound here)."""

from __future__ import annotations

import os
from pathlib import Path

import dns.message
import dns.rcode
from twisted.internet.task import Clock

from bns_resolver.answers.compile import compile_store
from bns_resolver.answers.store import store_root
from bns_resolver.dns_worker import DnsWorker
from bns_resolver.index.changes import save_state_noted
from bns_resolver.index.lookup import IndexReader
from bns_resolver.service import NOT_READY_KEY
from bns_resolver.settings import ChainSettings, Settings
from bns_resolver.workers import WorkerBrief
from tests.answers.pair import Ask, as_the_udp_reader
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index

ZONE = b"$ORIGIN alice.id\n@ A 192.0.2.1\n"


def _rcode(worker: DnsWorker, query_id: int) -> int:
    """As the UDP reader asks: the replay table, then the store, then the full path."""
    return dns.message.from_wire(as_the_udp_reader(worker.gateway, Ask("alice.id", "A").packet(query_id))).rcode()


def test_a_worker_follows_serves_verdict_and_forgets_what_it_answered(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = make_index(data, IndexSpec(names=[NameSpec("alice.id", ZONE)]))
    compile_store(IndexReader(engine), store_root(data))
    save_state_noted(engine, {NOT_READY_KEY: ""})  # serve: caught up with the chain
    settings = Settings(data_dir=data, upstreams=(), icann_tlds={"id": False},
                        chain=ChainSettings(bitcoind="http://127.0.0.1:9"))
    worker = DnsWorker(settings, Clock(), engine, WorkerBrief(1, 2, os.getpid(), "", ()))
    try:
        worker.follow()
        assert worker.not_ready is None
        assert _rcode(worker, 1) == dns.rcode.NOERROR
        assert len(worker.gateway.replay) == 1

        save_state_noted(engine, {NOT_READY_KEY: "the index is at block 10, 12 blocks behind the chain tip 22"})
        worker.follow()
        assert worker.not_ready is not None and "12 blocks behind" in worker.not_ready
        assert len(worker.gateway.replay) == 0  # what it answered while current is gone
        assert _rcode(worker, 2) == dns.rcode.SERVFAIL

        save_state_noted(engine, {NOT_READY_KEY: ""})
        worker.follow()
        assert worker.not_ready is None and _rcode(worker, 3) == dns.rcode.NOERROR
    finally:
        if worker.follower is not None:
            worker.follower.close()
