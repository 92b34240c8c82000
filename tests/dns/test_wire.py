"""The hand parser of plain queries and the patching of cached answers."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import pytest

from bns_resolver.dns.wire import parse_fast, patch_answer


def _wire(name: str, rdtype: str = "A", **kwargs: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kwargs).to_wire()  # type: ignore[arg-type]


def test_plain_query_is_parsed_with_lowercased_name() -> None:
    """One question, no EDNS: name lower-cased, type and class read, no EDNS info."""
    fast = parse_fast(_wire("WwW.Alice.ID", "URI"))
    assert fast is not None
    assert fast.qname == b"\x03www\x05alice\x02id\x00"
    assert (fast.qtype, fast.qclass, fast.edns) == (256, 1, None)


def test_bare_opt_record_gives_payload_and_do_bit() -> None:
    """A bare OPT is understood: payload clamped to 512..4096, DO bit read."""
    fast = parse_fast(_wire("alice.id", use_edns=0, payload=1232, want_dnssec=True))
    assert fast is not None and fast.edns is not None
    assert (fast.edns.payload, fast.edns.do_bit) == (1232, True)
    assert parse_fast(_wire("alice.id", use_edns=0, payload=65000)).edns.payload == 4096  # type: ignore[union-attr]


def test_unusual_queries_take_the_library_path() -> None:
    """EDNS options, EDNS version 1, responses, other opcodes and truncated packets are not fast."""
    cookie = dns.edns.GenericOption(10, b"\x01" * 8)
    assert parse_fast(_wire("alice.id", use_edns=0, options=[cookie])) is None
    assert parse_fast(_wire("alice.id", use_edns=1)) is None
    response = dns.message.make_response(dns.message.make_query("alice.id", "A")).to_wire()
    assert parse_fast(response) is None
    assert parse_fast(_wire("alice.id")[:-2]) is None
    notify = dns.message.make_query("alice.id", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert parse_fast(notify.to_wire()) is None


def test_cache_key_separates_what_changes_the_bytes() -> None:
    """Keys differ by case-folded name only when the bytes would differ (EDNS, DO, transport)."""
    plain = parse_fast(_wire("Alice.id"))
    same = parse_fast(_wire("ALICE.ID"))
    edns = parse_fast(_wire("alice.id", use_edns=0))
    assert plain and same and edns
    assert plain.cache_key(tcp=False) == same.cache_key(tcp=False)
    assert plain.cache_key(tcp=False) != edns.cache_key(tcp=False)
    assert plain.cache_key(tcp=False) != plain.cache_key(tcp=True)


@pytest.mark.parametrize("flag", [dns.flags.CD, dns.flags.RD, dns.flags.AD])
def test_cache_key_separates_checking_disabled_recursion_and_ad(flag: int) -> None:
    """CD=1 answers (unvalidated), RD=0 answers and AD answers never reach clients that asked otherwise."""
    query = dns.message.make_query("alice.id", "A")
    query.flags ^= flag
    toggled, plain = parse_fast(query.to_wire()), parse_fast(_wire("alice.id"))
    assert toggled and plain
    assert toggled.cache_key(tcp=False) != plain.cache_key(tcp=False)


def test_patch_answer_copies_id_flags_and_question() -> None:
    """A stored answer is re-addressed: the query's ID, RD bit and exact question bytes."""
    stored_query = dns.message.make_query("alice.id", "A")
    stored = dns.message.make_response(stored_query)
    stored.flags |= dns.flags.AA
    query = dns.message.make_query("ALICE.id", "A")
    query.flags &= ~dns.flags.RD
    wire = query.to_wire()
    fast = parse_fast(wire)
    assert fast is not None
    patched = dns.message.from_wire(patch_answer(stored.to_wire(), wire, fast.question_end))
    assert patched.id == query.id
    assert patched.question[0].name.to_text() == "ALICE.id."
    assert not patched.flags & dns.flags.RD and patched.flags & dns.flags.AA
