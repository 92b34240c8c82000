"""Tolerant zone-file parsing, on the irregular shapes real BNS zone files have."""

from __future__ import annotations

import dns.rdatatype
import pytest

from bns_resolver.errors import ZoneFileError
from bns_resolver.zonefiles.parse import MAX_ZONEFILE_BYTES, parse_zonefile


def _types(zonefile: str, name: str = "alice.id") -> list[tuple[str, str]]:
    parsed = parse_zonefile(zonefile.encode(), name)
    return [(r.owner, dns.rdatatype.to_text(r.rdtype)) for r in parsed.records]


def test_two_directives_on_one_line_and_no_final_newline() -> None:
    """`$ORIGIN x $TTL y` on one line (a real file) and a missing final newline still parse."""
    parsed = parse_zonefile(
        b'$ORIGIN test-personal.id $TTL 3600\n_resolver IN URI 10 1 "https://test-registrar.blockstack.org" ',
        "test-personal.id")
    assert [(r.owner, r.ttl) for r in parsed.records] == [("_resolver.test-personal.id", 3600)]


def test_class_and_ttl_are_optional_in_either_order() -> None:
    """Records with or without IN, with the TTL before or after the class."""
    assert _types("$TTL 60\n@ A 192.0.2.1\nwww 30 IN A 192.0.2.2\nmail IN 30 A 192.0.2.3\n") == [
        ("alice.id", "A"), ("www.alice.id", "A"), ("mail.alice.id", "A")]


def test_owner_is_inherited_by_indented_lines_and_comments_are_dropped() -> None:
    """A line starting with blanks belongs to the previous owner; `;` starts a comment outside quotes."""
    parsed = parse_zonefile(b'www A 192.0.2.1 ; web\n  TXT "a;b"\n', "alice.id")
    assert [r.owner for r in parsed.records] == ["www.alice.id", "www.alice.id"]
    assert parsed.records[1].rdata.strings == (b"a;b",)  # type: ignore[attr-defined]


def test_bad_lines_are_skipped_not_fatal() -> None:
    """One unreadable record costs that record only, with a reason kept."""
    parsed = parse_zonefile(b"www A not-an-address\nok A 192.0.2.9\n", "alice.id")
    assert [r.owner for r in parsed.records] == ["ok.alice.id"]
    assert parsed.skipped and "line 1" in parsed.skipped[0]


def test_owners_outside_the_name_are_refused() -> None:
    """A zone file cannot claim records for another name."""
    parsed = parse_zonefile(b"bob.id. A 192.0.2.1\n@ A 192.0.2.2\n", "alice.id")
    assert [r.owner for r in parsed.records] == ["alice.id"]
    assert "outside" in parsed.skipped[0]


def test_origin_does_not_move_the_anchor() -> None:
    """Owners stay under the on-chain name even if $ORIGIN names something else."""
    assert _types("$ORIGIN other.id\nwww A 192.0.2.1\n") == [("www.alice.id", "A")]


@pytest.mark.parametrize("content,words", [
    (b'{"name": "x"}', "JSON profile"),
    (b"\xff\xfe\x00", "UTF-8"),
    (b"x" * (MAX_ZONEFILE_BYTES + 1), "limit"),
    (b"garbage garbage garbage\n", "no readable record"),
])
def test_non_zone_files_are_rejected_with_a_reason(content: bytes, words: str) -> None:
    """Legacy profiles, binary data, oversize files and garbage raise ZoneFileError."""
    with pytest.raises(ZoneFileError, match=words):
        parse_zonefile(content, "alice.id")


def test_parenthesised_records_span_lines() -> None:
    """Multi-line records in parentheses are joined."""
    parsed = parse_zonefile(b'@ TXT ( "first"\n "second" )\n@ A 192.0.2.1\n', "alice.id")
    assert not parsed.skipped
    assert parsed.records[0].rdata.strings == (b"first", b"second")  # type: ignore[attr-defined]
    assert len(parsed.records) == 2


def test_txt_strings_over_255_bytes_are_kept_whole() -> None:
    """A 320-byte string (a multisig sig=) stays whole in `strings` and is cut to size for DNS."""
    long_value = "sig=" + "A" * 316
    parsed = parse_zonefile(f'sub TXT "owner=1x" "{long_value}"\n'.encode(), "alice.id")
    record = parsed.records[0]
    assert record.strings == (b"owner=1x", long_value.encode())
    assert record.rdata.strings == (b"owner=1x", long_value.encode()[:255], long_value.encode()[255:])  # type: ignore[attr-defined]


def test_quick_paths_give_the_same_rdata_as_dnspython() -> None:
    """The hand-parsed URI and A shapes equal dnspython's own parse of the same text."""
    import dns.rdata
    import dns.rdataclass

    parsed = parse_zonefile(b'_http._tcp URI 10 1 "https://gaia.example/hub/x/profile.json"\n@ A 192.0.2.7\n',
                            "alice.id")
    for record, text in zip(parsed.records, ('10 1 "https://gaia.example/hub/x/profile.json"', "192.0.2.7")):
        assert record.rdata == dns.rdata.from_text(dns.rdataclass.IN, record.rdtype, text)
