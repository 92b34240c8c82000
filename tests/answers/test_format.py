"""The store's value format and the name checks of its query path."""

from __future__ import annotations

from bns_resolver.answers.format import (
    FLAG_APEX,
    KIND_MASK,
    KIND_SERVFAIL,
    decode_servfail,
    encode_node,
    encode_servfail,
    find_entry,
    is_plain,
    is_plain_name,
    label_offsets,
    name_to_wire,
)


def _wire(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def test_entries_round_trip_with_the_default_for_unlisted_types() -> None:
    value = encode_node(FLAG_APEX, (0, 0, b""), {256: (0, 1, b"uri-section"), 255: (0, 2, b"any-section")})
    assert value[0] & FLAG_APEX
    assert find_entry(value, 256) == (0, 1, b"uri-section")
    assert find_entry(value, 255) == (0, 2, b"any-section")
    assert find_entry(value, 1) == find_entry(value, 0) == (0, 0, b"")


def test_servfail_values_carry_the_ede() -> None:
    value = encode_servfail(FLAG_APEX, 24, "bad.id: zone file hash mismatch")
    assert value[0] & KIND_MASK == KIND_SERVFAIL
    assert decode_servfail(value) == (24, b"bad.id: zone file hash mismatch")


def test_wire_names_and_label_offsets() -> None:
    wire = name_to_wire("_http._tcp.alice.id")
    assert wire == _wire([b"_http", b"_tcp", b"alice", b"id"])
    assert label_offsets(wire) == [0, 6, 11, 17]


def test_plain_names_are_exactly_those_of_plain_labels() -> None:
    """The quick check must agree with a per-label look, whatever the label lengths (45 is '-')."""
    cases = {
        (b"alice", b"id"): True,
        (b"x" * 45, b"id"): True,
        (b"a*", b"b-c", b"id"): True,
        (b"a b", b"id"): False,
        (b"a.b", b"id"): False,
        (b"y" * 45, b"a b", b"id"): False,
        (b"y" * 48, b"\x02", b"id"): False,
        (b"UPPER", b"id"): False,  # queries are lower-cased before; stored names are lower-case
        (b"a\x01b", b"id"): False,  # short names are judged by counting what is not plain
        (b"a\x00b", b"c", b"id"): False,
        (b"x" * 30, b"id"): True,
    }
    for labels, plain in cases.items():
        wire = _wire(list(labels))
        assert is_plain(wire, label_offsets(wire)) is plain, labels
        if not any(b"." in label for label in labels):  # text cannot spell a dot inside a label
            assert is_plain_name(".".join(label.decode() for label in labels)) is plain, labels
