"""The shipped STX genesis allocation: its totals, patches and airdrop batches.

Figures from blockstack==22.0.0.0's `blockstack/lib/genesis_block.py` (issue 13): 4 signed
stages of 1 / 1,091 / 1,198 / 1,733 rows; 1.32 billion STX, 453,172,121 liquid and 866,827,879
vesting over blocks 547,921-909,361; patches at 599,865 and 613,249; 33 airdrop batches at
613,250-613,282 of 10,000 lines granting 100 STX each from the 322,146-line csv.
"""

from __future__ import annotations

import hashlib
import itertools
import lzma

import pytest

from bns_resolver.base58 import b58check_encode
from bns_resolver.bns.genesis import AIRDROP_FILE, DATA_DIR, GENESIS_FILE, load_genesis

STX = 1_000_000  # µSTX


@pytest.fixture(scope="module")
def genesis():
    return load_genesis()


def test_stages_and_totals(genesis) -> None:
    assert [rows for _, rows in genesis.stages] == [1, 1091, 1198, 1733]
    assert len(genesis.rows) == 1733
    assert genesis.liquid_total() == 453_172_121 * STX
    assert genesis.vesting_total() == 866_827_879 * STX
    assert genesis.liquid_total() + genesis.vesting_total() == 1_320_000_000 * STX
    heights = [h for row in genesis.rows for h, _ in row.vesting]
    assert (min(heights), max(heights)) == (547_921, 909_361)


def test_patches(genesis) -> None:
    assert sorted(genesis.patches) == [599_865, 613_249]
    assert [len(genesis.patches[h].add) for h in (599_865, 613_249)] == [4538, 11]
    assert genesis.patches[599_865].delete == ("unallocated",)


def test_airdrop_batches(genesis) -> None:
    batches = genesis.airdrop_batches
    assert sorted(batches) == list(range(613_250, 613_283))
    assert all(b.value == 100 * STX and b.lock_send == 665_845 and b.receive_whitelisted for b in batches.values())
    spans = [(b.line_start, b.line_end) for b in batches.values()]
    assert spans[0] == (0, 10_000) and spans[-1] == (320_000, 322_146)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert genesis.airdrop_count == 322_146
    assert genesis.source["airdrop_csv_lines"] == 322_146


def test_airdrop_membership(genesis) -> None:
    """An airdrop address maps to its batch's block; other addresses to none."""
    first = genesis.airdrop_prefix(0)
    last = genesis.airdrop_prefix(genesis.airdrop_count - 1)
    # Only the prefix is shipped; any address sharing it is taken for the member (odds ~1e-18).
    assert genesis.airdrop_batch_height(b58check_encode(0, first + b"\0" * 10)) == 613_250
    assert genesis.airdrop_batch_height(b58check_encode(0, last + b"\0" * 10)) == 613_282
    assert genesis.airdrop_batch_height(b58check_encode(5, first + b"\0" * 10)) is None  # p2sh
    assert genesis.airdrop_batch_height(b58check_encode(0, b"\x01" * 20)) is None
    assert genesis.airdrop_batch_height("unallocated") is None
    assert len({genesis.airdrop_prefix(i) for i in range(genesis.airdrop_count)}) == genesis.airdrop_count


def test_addresses_are_account_keys(genesis) -> None:
    """c32 rows became mainnet base58check (p2pkh '1', p2sh '3'); labels stayed labels and are
    not receive-whitelisted (namedb_genesis_block's rule for unspendable addresses)."""
    for row in genesis.rows:
        if row.address[0] in "13":
            continue
        assert not row.address.startswith("S") and not row.receive_whitelisted, row.address


def test_shipped_files_match_their_digests() -> None:
    doc = load_genesis().source
    assert doc["genesis_block_py_sha256"] == "9f3d4dc1f39fe4ab8ec2d0f70b561aec9bc72af2d157c4df888754ee589ac63d"
    assert doc["airdrop_csv_sha256"] == "7151d07424aef17201e57e81b6150caa6b66e0e62f909ae5b6238ec713db74e1"
    for name in (GENESIS_FILE, AIRDROP_FILE):
        data = (DATA_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == (DATA_DIR / (name + ".sha256")).read_text().strip()
        lzma.decompress(data)
    assert sum(len((DATA_DIR / n).read_bytes()) for n in (GENESIS_FILE, AIRDROP_FILE)) < 4_000_000
