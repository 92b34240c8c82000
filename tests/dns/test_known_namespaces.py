"""A fresh mainnet sync: names under the chain's known namespaces are "not ready", never forwarded."""

from pathlib import Path

import dns.rcode

from tests.support.dns_fixtures import ServerProcess
from tests.support.upstream_stub import StubUpstream


def _ede_codes(reply: dns.message.Message) -> list[int]:
    return [option.code for option in reply.options if option.otype == 15]


def test_names_of_known_namespaces_wait_for_the_sync(tmp_path: Path, upstream: StubUpstream) -> None:
    # bitcoind is unreachable, so the index stays empty and not ready for the whole test.
    config = '[chain]\nbitcoind = "http://user:pass@127.0.0.1:9"\nnetwork = "mainnet"\n'
    server = ServerProcess(tmp_path / "data", upstreams=[upstream.address], config=config).start()
    try:
        reply = server.query("alice.helloworld", "A", use_edns=0)
        assert reply.rcode() == dns.rcode.SERVFAIL and 14 in _ede_codes(reply)
        assert upstream.count("alice.helloworld") == 0
        forwarded = server.query("example.com", "A")  # not a BNS namespace: forwarded as usual
        assert forwarded.rcode() == dns.rcode.NOERROR and upstream.count("example.com") == 1
    finally:
        server.stop()
