"""The native (C) answerer gives the UDP reader exactly the replies the Python store path gives.

Whatever it answers must be byte for byte `Gateway.store_answer_udp`'s reply; whatever it
cannot settle alone (SERVFAIL, a deferred zone file, a bns-first NXDOMAIN, an index that is
not ready, an upstream answer shadowing the namespace) it declines, and the Python path
decides. Mangled packets never crash it. Real compiled stores over real indexes.
"""

from __future__ import annotations

import os
import random
import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from bns_resolver.answers import native
from bns_resolver.answers.format import name_to_wire
from bns_resolver.dns.gateway import Gateway
from bns_resolver.dns.policy import Mode, TldStatus
from tests.answers.pair import QTYPES, Ask, GatewayPair
from tests.support.dns_fixtures import IndexSpec, NameSpec, make_index
from tests.support.mangle import mangle

ALICE = b'$ORIGIN alice.id\n@ A 192.0.2.1\n_http._tcp URI 10 1 "https://gaia.example/alice.json"\n'
# A URI only: the web gateway's address answers A/AAAA here.
BOB = b'$ORIGIN bob.id\n_http._tcp URI 10 1 "https://gaia.example/bob.json"\n'
# Answers too big for 512 bytes: TC unless the client's EDNS payload is large enough.
BIG = b"$ORIGIN big.id\n" + b"".join(b'@ TXT "%s"\n' % (b"%02d" % n * 60) for n in range(12))
CAROL = b'$ORIGIN carol.id\n@ A 192.0.2.3\nwww CNAME @\n'
SUB = b'$ORIGIN sub.alice.id\n_http._tcp URI 10 1 "https://gaia.example/sub.json"\n'

needs_native = pytest.mark.skipif(not native.available(), reason="the C extension was not built here")


def _can_build_extensions() -> bool:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(compiler) is not None and headers.exists()


def test_the_extension_is_built_wherever_it_can_be() -> None:
    """setup.py marks it optional; a machine with a compiler and the headers must still get it (as CI does)."""
    if not _can_build_extensions():
        pytest.skip("no C compiler or Python headers: the Python path serves alone")
    if os.environ.get(native.SWITCH) == "0":
        pytest.skip(f"{native.SWITCH}=0: the extension is turned off for this run")
    assert native.available(), "a C compiler and Python.h are here, yet bns_resolver.answers._native is missing"


@needs_native
def test_plan_kinds_are_the_extensions() -> None:
    assert (native._native.PLAN_BNS_FIRST, native._native.PLAN_BNS_ONLY) == (native.PLAN_BNS_FIRST,
                                                                           native.PLAN_BNS_ONLY)


def _index_spec() -> IndexSpec:
    names = [NameSpec("alice.id", ALICE), NameSpec("bob.id", BOB), NameSpec("big.id", BIG),
             NameSpec("carol.id", CAROL), NameSpec("held.id", b"$ORIGIN held.id\n@ A 192.0.2.9\n",
                                                   store_zonefile=False),
             NameSpec("gone.id", ALICE.replace(b"alice", b"gone"), revoked=True),
             NameSpec("broken.id", b"$ORIGIN broken.id\n@ A not-an-address\n"),
             NameSpec("app.app", b'$ORIGIN app.app\n@ TXT "hello"\n')]
    return IndexSpec(names=names, namespaces=("id", "app"), subdomains=[("sub.alice.id", SUB)])


def _pair(root: Path, **kwargs: object) -> GatewayPair:
    return GatewayPair(make_index(root / "index", _index_spec()), root / "answers", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[GatewayPair]:
    made = _pair(tmp_path)  # every namespace bns-only: NXDOMAIN comes from the store
    yield made
    made.close()


def _names() -> list[str]:
    bases = ["alice.id", "bob.id", "big.id", "carol.id", "held.id", "gone.id", "broken.id", "app.app",
             "sub.alice.id"]
    names = []
    for base in bases:
        names += [base, "www." + base, "_http._tcp." + base, "nx-q7." + base, "a.b." + base]
    return names + ["nobody.id", "x.y.z.nobody.id", "id", "app", "use-application-dns.net", "example.com",
                    "UPPER.Alice.ID", "wWw.BoB.iD", "bad!label.id", "we\\ird.alice.id"]


def _asks(web: str | None = None) -> list[Ask]:
    asks = []
    for name in _names():
        for rdtype in (*QTYPES, "SOA", "AXFR"):
            asks.append(Ask(name, rdtype, web=web))
            asks.append(Ask(name, rdtype, edns=512, do=True, web=web))
            asks.append(Ask(name, rdtype, edns=4096, web=web))
    return asks


def _compare(gateway: Gateway, packets: list[bytes]) -> tuple[int, list[bytes]]:
    """Ask the native answerer and store_answer_udp each packet (replay tables emptied before each);
    every native reply must be Python's. Returns the count of native replies and the Python replies
    to what the native answerer declined."""
    native_udp = gateway.native_store_udp()
    assert native_udp is not None
    answer = native_udp.answer
    by_native, python_only = 0, []
    for packet in packets:
        gateway.replay.clear()
        mine = answer(packet)
        gateway.replay.clear()
        theirs = gateway.store_answer_udp(packet)
        if mine is not None:
            assert mine == theirs, f"{packet!r}:\nnative {mine!r}\npython {theirs!r}"
            by_native += 1
        elif theirs is not None:
            python_only.append(theirs)
    return by_native, python_only


@needs_native
@pytest.mark.parametrize("web", [None, "192.0.2.80", "2001:db8::80"])
def test_native_replies_are_the_python_store_paths(pair: GatewayPair, web: str | None) -> None:
    gateway = pair.fast.view_with_web_address(web)
    packets = [ask.packet(0x4000 + n) for n, ask in enumerate(_asks(web))]
    by_native, python_only = _compare(gateway, packets)
    assert by_native > len(packets) // 3  # the common cases are settled in C
    # Python answers only what C leaves to it on purpose: the SERVFAILs of the broken zone file.
    assert python_only and all(reply[3] & 0x0F == 2 for reply in python_only)


@needs_native
def test_truncation_follows_the_clients_payload(pair: GatewayPair) -> None:
    native_udp = pair.fast.native_store_udp()
    assert native_udp is not None
    answer = native_udp.answer
    small = answer(Ask("big.id", "TXT").packet(7))
    large = answer(Ask("big.id", "TXT", edns=4096).packet(8))
    assert small is not None and small[2] & 0x02 and small[6:8] == b"\0\0"  # TC, no answers
    assert large is not None and not large[2] & 0x02 and large[6:8] == b"\0\x0c"


@needs_native
def test_what_c_leaves_to_python_is_declined(pair: GatewayPair) -> None:
    native_udp = pair.fast.native_store_udp()
    assert native_udp is not None
    answer = native_udp.answer
    assert answer(Ask("broken.id", "A").packet()) is None  # SERVFAIL + EDE: logged, not cached
    assert answer(Ask("held.id", "A").packet()) is None  # the zone file was not held: deferred
    assert answer(Ask("example.com", "A").packet()) is None  # not a namespace: forwarded
    assert answer(Ask("alice.id", "A").packet()[:-1]) is None  # a cut packet
    pair.fast.forwarded.namespaces.add("id")  # an upstream answer is cached under `id`
    assert answer(Ask("alice.id", "A").packet()) is None
    assert answer(Ask("app.app", "TXT").packet()) is not None


@needs_native
def test_bns_first_namespaces_send_missing_names_upstream(tmp_path: Path) -> None:
    made = _pair(tmp_path, shared=True, modes={"id": Mode.BNS_FIRST, "app": Mode.ICANN_FIRST})
    del made.fast.policy.configured_shared["id"]  # `id` waits for its probe
    try:
        native_udp = made.fast.native_store_udp()
        assert native_udp is not None
        answer = native_udp.answer
        assert answer(Ask("nobody.id", "A").packet()) is None  # the gateway forwards it
        assert answer(Ask("nx.alice.id", "A").packet()) is None
        assert answer(Ask("alice.id", "A").packet()) == made.fast.store_answer_udp(Ask("alice.id", "A").packet())
        assert answer(Ask("app.app", "TXT").packet()) is None  # icann-first: upstream first
        # A probe finds `id` is not an ICANN TLD after all: the plan follows at once.
        made.fast.policy.record_probe("id", TldStatus.BNS_ONLY)
        made.fast.replay.clear()
        reply = answer(Ask("nobody.id", "A").packet())
        assert reply is not None and reply[3] & 0x0F == 3
        assert _compare(made.fast, [Ask(n, t).packet() for n in _names() for t in QTYPES])[0] > 0
    finally:
        made.close()


@needs_native
def test_readiness_and_height_changes_reach_the_plans(tmp_path: Path) -> None:
    verdict: list[str | None] = [None]
    made = _pair(tmp_path, ready=lambda: verdict[0])
    try:
        native_udp = made.fast.native_store_udp()
        assert native_udp is not None
        answer = native_udp.answer
        assert answer(Ask("alice.id", "A").packet()) is not None
        verdict[0] = "the index is 12 blocks behind"
        made.fast.readiness_changed()
        assert answer(Ask("alice.id", "A").packet()) is None  # Python answers SERVFAIL + EDE
        verdict[0] = None
        made.fast.readiness_changed()
        nx = Ask("nobody.id", "A").packet()
        assert answer(nx) is not None and made.answerer.plans
        made.fast.names_changed([], height_moved=True)  # a block: the SOA serial is planned anew
        assert not made.answerer.plans
        made.fast.replay.clear()
        assert answer(nx) == made.fast.store_answer_udp(nx)
        made.fast.index_changed()  # the store no longer speaks for the index
        assert answer(Ask("alice.id", "A").packet()) is None
    finally:
        made.close()


@needs_native
def test_native_replies_are_remembered_like_pythons(pair: GatewayPair) -> None:
    native_udp = pair.fast.native_store_udp()
    assert native_udp is not None
    answer = native_udp.answer
    packet = Ask("_http._tcp.alice.id", "URI").packet(0x2222)
    reply = answer(packet)
    assert reply is not None
    assert pair.fast.replay.get(packet[2:]) == (reply[2:], float("inf"))
    for n in range(pair.fast.replay.max_entries + 5):  # a full table makes room as remember() does
        answer(Ask(f"nx{n}.alice.id", "A").packet())
    assert len(pair.fast.replay) <= pair.fast.replay.max_entries


@needs_native
def test_mangled_packets_never_crash_and_never_differ(pair: GatewayPair) -> None:
    rng = random.Random(2026)
    packets = [ask.packet(n) for n, ask in enumerate(_asks("192.0.2.80"))]
    gateway = pair.fast.view_with_web_address("192.0.2.80")
    mangled = [mangle(packet, rng, rng.randint(1, 4)) for packet in packets]
    mangled += [rng.randbytes(rng.randint(0, 600)) for _ in range(3000)]
    by_native, _ = _compare(gateway, mangled)
    assert by_native > 0


@needs_native
def test_an_empty_store_value_is_declined_as_python_fails_on_it(pair: GatewayPair) -> None:
    """A corrupt (empty) entry: Python's answer raises (the reader drops the datagram and logs it);
    C must not answer in its place, neither for the name nor for a name under it."""
    with pair.store.env.begin(write=True) as txn:
        txn.put(name_to_wire("alice.id"), b"")
    pair.store.renew()
    pair.answerer.attach(pair.store)
    native_udp = pair.fast.native_store_udp()
    assert native_udp is not None
    for name in ("alice.id", "nx.alice.id"):
        packet = Ask(name, "A").packet()
        assert native_udp.answer(packet) is None
        with pytest.raises(IndexError):
            pair.fast.store_answer_udp(packet)


@needs_native
def test_a_malformed_plan_or_an_uninitialised_answerer_is_an_error_not_a_crash(pair: GatewayPair) -> None:
    native_udp = pair.fast.native_store_udp()
    assert native_udp is not None
    pair.answerer.plans[b"id"] = ("bns-only", b"")  # type: ignore[assignment]
    with pytest.raises(TypeError, match="plan"):
        native_udp.answer(Ask("alice.id", "A").packet())
    blank = native._native.NativeAnswerer.__new__(native._native.NativeAnswerer)
    with pytest.raises(RuntimeError, match="before a successful __init__"):
        blank.answer(Ask("alice.id", "A").packet())
    with pytest.raises(TypeError, match="web"):
        blank.__init__(pair.answerer, {}, pair.answerer.plan, pair.fast.forwarded, "192.0.2.1", pair.fast.replay)
    with pytest.raises(RuntimeError):
        blank.read(0, {}, None, 0.0, 1)


@needs_native
def test_an_interrupt_inside_the_store_lookup_is_not_swallowed(pair: GatewayPair) -> None:
    """Exceptions are one datagram's failure (Python's path reports them); KeyboardInterrupt is not."""
    import socket

    native_udp = pair.fast.native_store_udp()
    assert native_udp is not None
    pair.fast.access.allows("127.0.0.1")

    def interrupted(_key: bytes) -> bytes | None:
        raise KeyboardInterrupt

    pair.answerer._get = interrupted
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client.sendto(Ask("alice.id", "A").packet(), server.getsockname())
        with pytest.raises(KeyboardInterrupt):
            native_udp.read(server.fileno(), pair.fast.access.decided, None, 0.0, 8)
        pair.answerer._get = lambda _key: (_ for _ in ()).throw(ValueError("a broken store"))
        client.sendto(Ask("alice.id", "A").packet(7), server.getsockname())
        handed, joined = native_udp.read(server.fileno(), pair.fast.access.decided, None, 0.0, 8)
        assert joined == 0 and len(handed) == 1 and handed[0][2] is None  # back to Python, which reports it
    finally:
        client.close()
        server.close()
