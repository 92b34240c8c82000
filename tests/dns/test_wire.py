"""The hand parser of plain queries, the patching of cached answers, and the message walker."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rrset
import pytest

from bns_resolver.dns.cache import ttl_offsets
from bns_resolver.dns.forward_shape import core_reply
from bns_resolver.dns.wire import TYPE_OPT, parse_fast, patch_answer, skip_name, walk_message


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


def _reply_with_records(*, edns: bool = True) -> bytes:
    """A response whose answer and authority owner names are compressed against the question."""
    query = dns.message.make_query("www.alice.id", "A", use_edns=0 if edns else None)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("www.alice.id.", 300, "IN", "CNAME", "alice.id."))
    response.answer.append(dns.rrset.from_text("alice.id.", 600, "IN", "A", "192.0.2.1", "192.0.2.2"))
    response.authority.append(dns.rrset.from_text("id.", 900, "IN", "NS", "ns.id."))
    return response.to_wire()


def test_walker_finds_every_record_and_its_ttl_through_compression() -> None:
    """Records after the question, in order, with their type, TTL and end; OPT last; nothing trails."""
    wire = _reply_with_records()
    walk = walk_message(wire)
    assert walk.question_end == 12 + len(b"\x03www\x05alice\x02id\x00") + 4
    assert [(r.rtype, r.ttl) for r in walk.records[:4]] == [(5, 300), (1, 600), (1, 600), (2, 900)]
    assert walk.records[-1].rtype == TYPE_OPT and walk.end == len(wire)
    assert all(wire[r.start] & 0xC0 == 0xC0 for r in walk.records[:4])  # every owner is a pointer
    assert [int.from_bytes(wire[o:o + 4], "big") for o in ttl_offsets(wire)] == [300, 600, 600, 900]
    assert all(a.end == b.start for a, b in zip(walk.records, walk.records[1:]))


def test_skip_name_reads_labels_pointers_and_refuses_extended_label_types() -> None:
    """Plain names end at their root label, compressed ones after the two pointer bytes; a length
    byte 0x40-0xBF (RFC 6891 §5 extended label type) or a name past the end is malformed."""
    assert skip_name(b"\x05alice\x02id\x00rest", 0) == 10
    assert skip_name(b"\x03www\xc0\x0c", 0) == 6
    for length in (0x40, 0x7F, 0xBF):
        with pytest.raises(ValueError, match="extended label type"):
            skip_name(bytes([3]) + b"www" + bytes([length]) + b"x" * 80 + b"\x00", 0)
    with pytest.raises(ValueError, match="past the end"):
        skip_name(b"\x05ali", 0)
    with pytest.raises(ValueError, match="past the end"):
        skip_name(b"\x03www\xc0", 0)  # half a pointer


def test_forward_cache_and_reshaping_agree_on_an_extended_label_type() -> None:
    """Both walkers used to differ here (one read the byte as a length): now neither takes the reply."""
    wire = bytearray(_reply_with_records(edns=False))
    walk = walk_message(bytes(wire))
    wire[walk.records[0].start] = 0x41  # the first answer's owner: an extended label type
    with pytest.raises(ValueError, match="extended label type"):
        ttl_offsets(bytes(wire))
    assert core_reply(bytes(wire)) is None


def test_walker_refuses_messages_whose_records_do_not_fit() -> None:
    """Cut anywhere inside the records, a reply is malformed; bytes after the last record are seen."""
    wire = _reply_with_records()
    question_end = walk_message(wire).question_end
    for cut in range(question_end + 1, len(wire)):
        with pytest.raises(ValueError):
            walk_message(wire[:cut])
        assert core_reply(wire[:cut]) is None
    trailing = walk_message(wire + b"\x00\x00")
    assert trailing.end == len(wire)
    assert core_reply(wire + b"\x00\x00") is None
    with pytest.raises(ValueError, match="shorter than a DNS header"):
        walk_message(wire[:11])
