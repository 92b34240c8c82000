from __future__ import annotations

import json


from bns_resolver.hashing import hash160
from bns_resolver.zonefiles.subdomains import ParentZoneFile, SubdomainRecord, decode_parent_zonefile, decide_history
from tests.support.zonefile_data import derived_zonefiles, genesis_dir
from tests.support.zonefile_subdomains import address, key, parent_zonefile, sub_zonefile, txt_line, update_line

ALICE = key(1)
BOB = key(2)


def _parent(domain: str, lines: list[str], *, inv: int = 1, block: int = 500000, **kw: str) -> ParentZoneFile:
    content = parent_zonefile(domain, lines, **kw)
    return ParentZoneFile(hash160(content).hex(), content, domain, block, inv)


def _records(parent: ParentZoneFile) -> list[SubdomainRecord]:
    return list(decode_parent_zonefile(parent).records)


def test_doc_vector_1yeardaily_verified_podcast() -> None:
    """The docs' subdomain vector: 1yeardaily's zf0, in a verified.podcast file, decodes to a file hashing to e7acc97f…."""
    vector = next(v for v in json.loads((genesis_dir() / "doc_examples.json").read_text()) if "1yeardaily" in v["name"])
    zf0 = vector["zf0"]
    line = f'1yeardaily TXT "owner=1MwPD6dH4fE3gQ9mCov81L1DEQWT7E85qH" "seqn=0" "parts=1" "zf0={zf0}"'
    (record,) = _records(_parent("verified.podcast", [line]))
    assert record.fqn == "1yeardaily.verified.podcast"
    assert record.zonefile_hash == vector["recorded_hash"] == "e7acc97fd42c48ed94fd4d41f674eddbee5557e3"


def test_real_verified_podcast_zonefile_has_18_subdomains() -> None:
    """The genesis zone file of verified.podcast decodes to 18 seqn-0 records, nothing skipped."""
    row = next(z for z in derived_zonefiles() if z["name"] == "verified.podcast")
    decoded = decode_parent_zonefile(ParentZoneFile(row["zonefile_hash"], row["zonefile"].encode(), "verified.podcast"))
    assert len(decoded.records) == 18 and decoded.skipped == () and decoded.dropped is None
    assert {r.sequence for r in decoded.records} == {0}


def test_signed_text_escapes_and_splits_into_250_char_pieces() -> None:
    """The signed text re-encodes the zone file, cuts 250-char pieces and escapes '=' as '\\='."""
    zonefile = b"x" * 200  # 268 base64 chars: two pieces, padding '='
    record = SubdomainRecord("alice.foo.id", "foo.id", "1Owner", 3, zonefile, None, _parent("foo.id", []), 0)
    text = record.signed_text()
    fields = text.split(",")
    assert fields[:4] == ["alice", "owner=1Owner", "seqn=3", "parts=2"]
    assert len(fields[4]) == len("zf0=") + 250 and fields[5].endswith("\\=")


def test_independent_record_signs_its_full_name() -> None:
    """A record for a.b.id carried in c.id's zone file is independent and signs 'a.b.id'."""
    parent = _parent("c.id", [txt_line("a.b.id", owner=address(ALICE), seqn=1, zonefile=b"z")])
    (record,) = _records(parent)
    assert record.independent and record.fqn == "a.b.id"
    assert record.signed_text().startswith("a.b.id,owner=")


def test_reserved_names_skipped_and_resolver_kept() -> None:
    """_missing/_resolver/_registrar TXT are not subdomains; the _resolver URI becomes the registrar URL."""
    lines = [
        '_missing TXT "1,2"',
        txt_line("_registrar", owner=address(ALICE), seqn=0, zonefile=b"r"),
        txt_line("alice", owner=address(ALICE), seqn=0, zonefile=sub_zonefile("alice.foo.id")),
    ]
    (record,) = _records(_parent("foo.id", lines, resolver="https://registrar.example"))
    assert record.fqn == "alice.foo.id" and record.resolver == "https://registrar.example"


def test_origin_mismatch_drops_every_record() -> None:
    """A zone file whose $ORIGIN is not the domain yields no subdomains (blockstack-core's check)."""
    content = parent_zonefile("other.id", [txt_line("alice", owner=address(ALICE), seqn=0, zonefile=b"a")])
    decoded = decode_parent_zonefile(ParentZoneFile(hash160(content).hex(), content, "foo.id"))
    assert decoded.records == () and "ORIGIN" in (decoded.dropped or "")


def test_bad_name_skips_one_record_bad_base64_drops_the_file() -> None:
    """A bad subdomain name costs that record; undecodable base64 costs the whole file, as in blockstack-core."""
    good = txt_line("alice", owner=address(ALICE), seqn=0, zonefile=b"a")
    bad_name = txt_line("Bad!Name", owner=address(ALICE), seqn=0, zonefile=b"b")
    decoded = decode_parent_zonefile(_parent("foo.id", [good, bad_name]))
    assert [r.fqn for r in decoded.records] == ["alice.foo.id"] and len(decoded.skipped) == 1
    broken = 'bob TXT "owner=1x" "seqn=0" "parts=1" "zf0=abcde"'  # incorrect padding
    assert decode_parent_zonefile(_parent("foo.id", [good, broken])).dropped is not None


def test_duplicates_in_one_file_keep_lowest_seqn_then_first() -> None:
    """Within one zone file the lowest seqn wins; on a tie the first record wins; losers are reported."""
    lines = [
        txt_line("alice", owner=address(ALICE), seqn=1, zonefile=b"one"),
        txt_line("alice", owner=address(ALICE), seqn=0, zonefile=b"zero-first"),
        txt_line("alice", owner=address(ALICE), seqn=0, zonefile=b"zero-second"),
    ]
    decoded = decode_parent_zonefile(_parent("foo.id", lines))
    assert [r.zonefile for r in decoded.records] == [b"zero-first"]
    assert sorted(s.record.zonefile for s in decoded.skipped if s.record) == [b"one", b"zero-second"]


def _creation(zonefile: bytes = b"v0", *, inv: int = 1) -> SubdomainRecord:
    line = txt_line("alice", owner=address(ALICE), seqn=0, zonefile=zonefile)
    return _records(_parent("foo.id", [line], inv=inv))[0]


def _update(signer: object, *, seqn: int, owner: str, zonefile: bytes, inv: int, carrier: str = "foo.id",
            written: str = "alice") -> SubdomainRecord:
    line = update_line(signer, written, fqn="alice.foo.id", domain=carrier, owner=owner, seqn=seqn, zonefile=zonefile)  # type: ignore[arg-type]
    return _records(_parent(carrier, [line], inv=inv, block=500000 + inv))[0]


def test_valid_update_signed_by_owner_is_accepted() -> None:
    """seqn 0 creation then seqn 1 signed by the owner: both accepted."""
    decisions = decide_history([_creation(), _update(ALICE, seqn=1, owner=address(ALICE), zonefile=b"v1", inv=2)])
    assert [(d.record.sequence, d.accepted) for d in decisions] == [(0, True), (1, True)]


def test_forged_signature_is_rejected() -> None:
    """An update signed by someone other than the previous owner is rejected with the reason."""
    decisions = decide_history([_creation(), _update(BOB, seqn=1, owner=address(BOB), zonefile=b"v1", inv=2)])
    assert decisions[1].accepted is False and "not signed by previous owner" in (decisions[1].reason or "")


def test_sequence_gap_is_rejected() -> None:
    """seqn 2 directly after seqn 0 is rejected as a gap."""
    decisions = decide_history([_creation(), _update(ALICE, seqn=2, owner=address(ALICE), zonefile=b"v2", inv=2)])
    assert decisions[1].accepted is False and "sequence gap" in (decisions[1].reason or "")


def test_transfer_from_independent_record_is_rejected_update_is_not() -> None:
    """From another name's zone file, an owner change is refused but a same-owner update is accepted."""
    transfer = _update(ALICE, seqn=1, owner=address(BOB), zonefile=b"t", inv=2, carrier="bar.id", written="alice.foo.id")
    assert transfer.independent
    refused = decide_history([_creation(), transfer])[1]
    assert refused.accepted is False and "independent" in (refused.reason or "")
    update = _update(ALICE, seqn=1, owner=address(ALICE), zonefile=b"u", inv=3, carrier="bar.id", written="alice.foo.id")
    assert decide_history([_creation(), update])[1].accepted is True


def test_transfer_from_own_domain_is_accepted_and_new_owner_signs_next() -> None:
    """A transfer in the parent domain's file is accepted; afterwards only the new owner can update."""
    to_bob = _update(ALICE, seqn=1, owner=address(BOB), zonefile=b"t", inv=2)
    by_alice = _update(ALICE, seqn=2, owner=address(ALICE), zonefile=b"x", inv=3)
    by_bob = _update(BOB, seqn=2, owner=address(BOB), zonefile=b"y", inv=4)
    decisions = decide_history([_creation(), to_bob, by_alice, by_bob])
    assert [d.accepted for d in decisions] == [True, True, False, True]


def test_tie_on_seqn_earliest_inv_index_wins() -> None:
    """Two valid seqn-1 updates: the one in the earlier zone file (lower inv_index) wins, regardless of input order."""
    late = _update(ALICE, seqn=1, owner=address(ALICE), zonefile=b"late", inv=9)
    early = _update(ALICE, seqn=1, owner=address(ALICE), zonefile=b"early", inv=4)
    decisions = decide_history([late, _creation(), early])
    winners = [d.record.zonefile for d in decisions if d.accepted]
    assert winners == [b"v0", b"early"]
    assert "already taken" in (next(d for d in decisions if d.record is late).reason or "")


def test_creation_must_be_seqn_zero_in_own_domain() -> None:
    """Without a seqn-0 creation from the parent domain, nothing is accepted."""
    orphan = _update(ALICE, seqn=1, owner=address(ALICE), zonefile=b"v1", inv=2)
    assert [d.accepted for d in decide_history([orphan])] == [False]
    foreign = _records(_parent("bar.id", [txt_line("alice.foo.id", owner=address(ALICE), seqn=0, zonefile=b"f")]))
    decision = decide_history(foreign)[0]
    assert decision.accepted is False and "creation must come from foo.id" in (decision.reason or "")


def _multisig_case() -> tuple[str, str, bytes]:
    from bns_resolver.zonefiles.subdomain_auth import make_multisig_redeem_script, p2sh_address, sign_multisig
    from tests.support.zonefile_subdomains import signed_text

    keys = [key(31), key(32), key(33)]
    script = make_multisig_redeem_script(2, [k.public_key.format() for k in keys])
    owner = p2sh_address(script)
    text = signed_text(fqn="alice.foo.id", domain="foo.id", owner=owner, seqn=1, zonefile=b"m1")
    return owner, sign_multisig(keys[1:], script, text), script


def test_multisig_owner_update_is_accepted() -> None:
    """A subdomain owned by a 2-of-3 p2sh address accepts a seqn-1 update carrying two signatures."""
    owner, sig, _ = _multisig_case()
    parent = _parent("foo.id", [])
    creation = SubdomainRecord("alice.foo.id", "foo.id", owner, 0, b"m0", None, parent, 0)
    later = ParentZoneFile("11" * 20, b"", "foo.id", 500001, 2)
    update = SubdomainRecord("alice.foo.id", "foo.id", owner, 1, b"m1", sig, later, 0)
    assert [d.accepted for d in decide_history([creation, update])] == [True, True]


def test_multisig_update_survives_zonefile_parsing() -> None:
    """The same multisig update written into a zone file is decoded (blockstack_zones has no 255-byte limit)."""
    owner, sig, _ = _multisig_case()
    line = txt_line("alice", owner=owner, seqn=1, zonefile=b"m1", sig=sig)
    assert len(_records(_parent("foo.id", [line], inv=2))) == 1


def test_declared_origin_reads_only_the_directive() -> None:
    """$ORIGIN is read from its directive line (even with `$TTL` on the same line), never from record data."""
    from bns_resolver.zonefiles.subdomains import declared_origin

    assert declared_origin(b'x TXT "$ORIGIN evil.id"\n$ORIGIN Test-Personal.ID. $TTL 3600 \n') == "test-personal.id"
    assert declared_origin(b"_http._tcp URI 10 1 \"https://a\"\n") is None
