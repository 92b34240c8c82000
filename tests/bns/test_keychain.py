"""Tests for bns.keychain: the NAME_IMPORT keyring of a revealed namespace."""

from bns_resolver.bns.keychain import child_public_keys, import_keychain

# Revealer key of 0.13/namespace_preorder_reveal_import_multi_multikey_ready (address mxHH7F…);
# the reference accepted an import from child 1 (msbM1P…) at block 260.
REVEALER = (
    "0497cb0fccbbcf48b2b9516920ca8d973cd81ce032ef1abc0e627c7fd0e4dcee58f0de02424a937af13930910c81cde3ca79"
    "4980e3035b034033e4b7758e46b018"
)


def test_keyring_contains_logged_child_importer_and_revealer() -> None:
    """Five compressed BIP32 children (chain code 0) plus the revealer's own address, in order."""
    keyring = import_keychain(REVEALER, 5, 111)
    assert len(keyring) == 6
    assert keyring[1] == "msbM1P5B5gGRCnPimsgaaSTzJ7CeXfiLEi"
    assert keyring[-1] == "mxHH7Fch85gD2i74yaWQxeqBkwk2NvzdWq"


def test_children_are_compressed_and_distinct() -> None:
    """CKDpub output is 33-byte compressed points, one per index."""
    keys = child_public_keys(REVEALER, 3)
    assert all(len(k) == 33 and k[0] in (2, 3) for k in keys)
    assert len(set(keys)) == 3
