"""Shape-compiled subdomain entries equal what `binding_items` compiles from each zone file whole."""

from __future__ import annotations

from bns_resolver.answers.compile import with_nodes_key
from bns_resolver.answers.nodes import binding_items
from bns_resolver.answers.shapes import SubdomainShapes
from bns_resolver.hashing import hash160_hex

GAIA = "https://gaia.blockstack.org/hub"


def zonefile(fqn: str, owner: str, extra: str = "", ttl: int = 3600) -> bytes:
    return (f'$ORIGIN {fqn}\n$TTL {ttl}\n_http._tcp\tIN\tURI\t10\t1\t"{GAIA}/{owner}/profile.json"\n'
            f"{extra}\n").encode()


def whole(fqn: str, content: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    kind, items = binding_items(fqn, fqn.rsplit(".", 1)[-1], hash160_hex(content), content)
    assert kind == "node"
    return len(items), with_nodes_key(fqn, items)


def test_subdomains_sharing_a_shape_get_their_own_bytes() -> None:
    shapes = SubdomainShapes(with_nodes_key)
    cases = [
        ("alice.reg.id", "1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""),
        ("bobby.reg.id", "1BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", ""),  # same shape as alice
        ("0abcd.reg.id", "1CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", ""),  # digit first: sorts before '_'
        ("9-z-9.reg.id", "1DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", ""),
        ("carol.reg.id", "1EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE", '_text\tIN\tTXT\t"btc=1EEEEEEEEEEEEEEEE"'),
        ("dave1.reg.id", "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", '_text\tIN\tTXT\t"btc=1FFFFFFFFFFFFFFFF"'),
        ("erin.other.btc", "1GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG", ""),
        ("frank.reg.id", "1HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH", "@\tIN\tA\t192.0.2.1"),
        ("grace.reg.id", "1IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII", "@\tIN\tA\t10.0.0.255"),  # frank's shape
        # An address whose bytes read as a placeholder ('~_1!') of the file's next value.
        ("heidi.reg.id", "1JJJJ", '@\tIN\tA\t126.95.49.33\n_text\tIN\tTXT\t"abcd"'),
        ("ivan0.reg.id", "1KKKK", '@\tIN\tA\t1.2.3.4\n_text\tIN\tTXT\t"wxyz"'),  # heidi's shape
    ]
    for fqn, owner, extra in cases:
        content = zonefile(fqn, owner, extra)
        shaped = shapes.items(fqn, fqn.rsplit(".", 1)[-1], hash160_hex(content), content)
        assert shaped == whole(fqn, content), fqn
    assert shapes.hits == len(cases)
    # alice/bobby, 0abcd/9-z-9 (digit first, 5 long), carol/dave1, frank/grace, heidi/ivan0 shared theirs
    assert len(shapes._shapes) == 6


def test_files_off_the_pattern_take_the_whole_path() -> None:
    shapes = SubdomainShapes(with_nodes_key)
    fqn = "alice.reg.id"
    good = zonefile(fqn, "1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert shapes.items(fqn, "id", "0" * 40, good) is None  # hash mismatch: the slow path's SERVFAIL
    assert shapes.items(fqn, "id", hash160_hex(good).upper(), good) is None  # not a lower-case hash, as verify_zonefile
    assert shapes.items(fqn, "id", hash160_hex(good), None) is None  # not held yet
    others = [
        zonefile(fqn, "1AAAA", "www\tIN\tA\t192.0.2.1"),  # a record owner that is not an underscore label
        zonefile(fqn, 'x\\"y'),  # an escaped quote
        good.replace(b"$ORIGIN alice", b"$ORIGIN bob"),  # another name's origin
        zonefile("a_b.reg.id", "1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),  # underscore in the label
    ]
    for content in others:
        assert shapes.items(fqn, "id", hash160_hex(content), content) is None
    assert shapes.hits == 0
