"""The query pipeline in-process: caches, the replay table, access control."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import pytest
from twisted.internet.task import Clock

from bns_resolver.dns.access import AccessList
from bns_resolver.dns.authority import BnsAuthority
from bns_resolver.dns.forwarder import Forwarder
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.zones import ZoneCache
from bns_resolver.index.lookup import IndexReader
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    engine = make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", b"@ A 192.0.2.1\nwww A 192.0.2.2\n")]))
    reader = IndexReader(engine)
    gw = Gateway(BnsAuthority(reader, ZoneCache(reader)), Forwarder([]), access=AccessList(["127.0.0.0/8"]))
    gw.policy.configured_shared["id"] = False
    return gw


def _ask(gateway: Gateway, name: str, client: str = "127.0.0.1") -> tuple[bytes, dns.message.Message]:
    query = dns.message.make_query(name, "A").to_wire()
    answer = gateway.handle(query, client, tcp=False)
    assert isinstance(answer, bytes)
    return query, dns.message.from_wire(answer)


def test_repeated_query_is_replayable_with_any_id(gateway: Gateway) -> None:
    """After a cache hit, the exact query bytes map to the answer minus its ID."""
    _ask(gateway, "www.alice.id")
    query, reply = _ask(gateway, "www.alice.id")
    entry = gateway.replay.get(query[2:])
    assert entry is not None
    tail, until = entry
    assert until == float("inf")
    replayed = dns.message.from_wire(b"\xbe\xef" + tail)
    assert replayed.id == 0xBEEF and replayed.answer == reply.answer


def test_index_change_drops_replayable_answers(gateway: Gateway) -> None:
    """A block or a zone file may change any answer: the replay table empties with the caches."""
    _ask(gateway, "alice.id")
    _ask(gateway, "alice.id")
    assert gateway.replay
    gateway.index_changed()
    assert not gateway.replay and not len(gateway.answers)


def test_refused_clients_get_nothing_cached(gateway: Gateway) -> None:
    """A client outside the allow-list is refused before any cache is consulted."""
    _ask(gateway, "alice.id")
    _ask(gateway, "alice.id")
    _, reply = _ask(gateway, "alice.id", client="198.51.100.7")
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    assert gateway.access.decided["198.51.100.7"] is False


def test_namespaces_from_the_chain_profile_are_gated_while_not_ready(tmp_path: Path) -> None:
    """A namespace the index has not seen but `bns_namespaces` names: SERVFAIL + EDE 14 until ready."""
    engine = make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", b"@ A 192.0.2.1\n")]))
    reader = IndexReader(engine)
    state = {"not_ready": "syncing"}
    gw = Gateway(BnsAuthority(reader, ZoneCache(reader)), Forwarder([]), ready=lambda: state["not_ready"],
                 bns_namespaces=lambda: {"podcast"})
    query = dns.message.make_query("bob.podcast", "A", use_edns=0)
    reply = dns.message.from_wire(gw.handle(query.to_wire(), "127.0.0.1", tcp=False))  # type: ignore[arg-type]
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert [o.code for o in reply.options if o.otype == dns.edns.EDE] == [14]
    state["not_ready"] = None  # type: ignore[assignment]
    assert not isinstance(gw.handle(query.to_wire(), "127.0.0.1", tcp=False), bytes)  # ready: forwarded


def test_random_names_under_a_shared_namespace_have_an_upstream_budget(tmp_path: Path) -> None:
    """At 5 fetches/s (bursts of 10) for unknown names under `id`, a flood of 30 sends 10 or so upstream."""
    engine = make_index(tmp_path, IndexSpec(names=[NameSpec("alice.id", b"@ A 192.0.2.1\n")]))
    reader = IndexReader(engine)
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # silent: forwards stay in flight
    upstream.bind(("127.0.0.1", 0))
    forwarder = Forwarder([upstream.getsockname()], reactor=Clock(), max_sockets=1000)
    forwarder.reactor.addReader = forwarder.reactor.removeReader = lambda _reader: None  # type: ignore[attr-defined]
    gw = Gateway(BnsAuthority(reader, ZoneCache(reader)), forwarder, unknown_name_fetch_rate=5)
    gw.policy.configured_shared["id"] = True  # shared with ICANN: bns-first forwards unknown names
    answers = [gw.handle(dns.message.make_query(f"r{i}.id", "A").to_wire(), "127.0.0.1", tcp=False)
               for i in range(30)]
    forwarded = [a for a in answers if not isinstance(a, bytes)]
    refused = [dns.message.from_wire(a) for a in answers if isinstance(a, bytes)]
    assert 10 <= len(forwarded) < 15
    assert all(r.rcode() == dns.rcode.SERVFAIL for r in refused)
    known = gw.handle(dns.message.make_query("alice.id", "A").to_wire(), "127.0.0.1", tcp=False)
    assert isinstance(known, bytes) and dns.message.from_wire(known).answer  # BNS names are not limited
    upstream.close()
