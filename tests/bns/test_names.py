"""Tests for bns.names: TV1–TV3 hash vectors, b40, syntax and expiry deadlines."""

from bns_resolver.bns import names
from bns_resolver.bns.networks import mainnet
from bns_resolver.hashing import hash128, hash160


def test_tv1_hash_vectors() -> None:
    """hash160('1234'), hash128('999') and the 200-char b40 prefix from blockstack.js."""
    assert hash160(b"1234").hex() == "fd7a0d80999bedd76c9a0828057817fc6049a507"
    assert hash128(b"999").hex() == "83cf8b609de60036a8277bd0e9613575"
    text = names.B40_ALPHABET * 5
    assert names.b40_to_bytes(text).hex().startswith("384a516059e707615a1992d3101f6f346df3326d")


def test_b40_muneeb_id() -> None:
    """b40('muneeb.id') = 0x87b0059d8e5d; leading zeros vanish."""
    assert names.b40_to_bytes("muneeb.id").hex() == "87b0059d8e5d"
    assert names.b40_to_bytes("0") == b"\x00"


def test_tv2_name_consensus_hash() -> None:
    """hash128('jude.id' + CH) from docs/wire-format.md."""
    assert names.name_consensus_hash("jude.id", "8d8762c37d82360b84cf4d87f32f7754") == "d1062edb9ec9c85ad1aca6d37f2f5793"


def test_tv3_preorder_hash_and_hash128() -> None:
    """patrickstanley.id preorder hash and name_hash128 (mainnet)."""
    script = "76a91408d0dd44c1f0a3a4f0957ae95901929d7d66d55788ac"
    assert names.hash_name("patrickstanley.id", script, "17CbHgTgBG3kLedXNneEKBkCTgW2fyrnUD") == (
        "26bf7874706ac761afdd403ed6b3b9578fb01a34"
    )
    assert names.name_hash128("patrickstanley.id") == "683a3e1ee5f0296833c56e481cf41b77"


def test_tv5_regtest_preorder_hash() -> None:
    """TV5: foo.test preorder hash with a testnet recipient address."""
    script = "76a9147144b3fef9fe537e2445f1c0dfb4ce007c51461288ac"
    assert names.hash_name("foo.test", script, "n44rMyQ9rhTf7KjFdRwDNMWUSJ3MWLsDQ4").startswith("47c3d2a9")


def test_tv7_update_hash() -> None:
    """TV7: hash128('foo.test' + CH(261))."""
    assert names.name_consensus_hash("foo.test", "bd80fe851c4a93bfb6423d7fad3bfdfb") == "3cfe985c6b4946d743ac6787e54ef907"


def test_name_syntax() -> None:
    """One dot, lowercase [a-z0-9-_], ns ≤ 19, total ≤ 37."""
    assert names.is_name_valid("muneeb.id")
    assert not names.is_name_valid("Muneeb.id")
    assert not names.is_name_valid("a.b.id")
    assert not names.is_name_valid("a+b.id")
    assert not names.is_name_valid("x" * 35 + ".id")
    assert not names.is_name_valid("a." + "n" * 20)


def test_resolvable_until_uses_epoch_multiplier() -> None:
    """A .id name renewed in epoch 2 lives two lifetimes; infinite lifetimes never expire."""
    profile = mainnet()
    namespace = {"namespace_id": "id", "lifetime": 52595, "ready_block": 373601, "ready": True, "reveal_block": 373600}
    name = {"last_renewed": 450000, "revoked": False}
    assert names.resolvable_until(name, namespace, profile) == 450000 + 2 * 52595 - 1
    forever = dict(namespace, lifetime=names.LIFETIME_INFINITE)
    assert names.resolvable_until(name, forever, profile) is None
    assert names.resolvable_until(dict(name, revoked=True), namespace, profile) == 449999
