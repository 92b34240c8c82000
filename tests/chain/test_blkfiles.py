"""Blocks read from bitcoind's blk*.dat files, written here in Core's on-disk format from
the regtest chains the test bitcoind serves."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bns_resolver.chain.blkfiles import NETWORK_MAGIC, BlockFiles, xor_at
from bns_resolver.chain.fetcher import BlockFetcher
from bns_resolver.chain.rpc import BitcoindRPC
from bns_resolver.config import load_settings
from bns_resolver.errors import ConfigError
from tests.chain.test_sync_paths import synced_index
from tests.support.bitcoind import BitcoindServer
from tests.support.chainbuilder import ChainBuilder, corpus_chain
from tests.support.corpus import corpus_files, load_scenario

KEY = bytes.fromhex("5a17c3e08b94d126")
PADDING = 4096  # Core preallocates block files; the unwritten tail reads as zeros


def write_block_files(blocks_dir: Path, raw_blocks: Sequence[bytes], *, key: bytes | None = None,
                      files: int = 3, network: str = "regtest") -> None:
    """Core's layout: records of magic + LE size + block, in arrival order (here: each pair of
    neighbours swapped, so children often precede parents), spread over `files` files that
    end in zero padding, all XORed with `key` from each file's byte 0 when one is given."""
    blocks_dir.mkdir(parents=True, exist_ok=True)
    order = list(raw_blocks)
    for i in range(0, len(order) - 1, 2):
        order[i], order[i + 1] = order[i + 1], order[i]
    per_file = -(-len(order) // files)
    for number in range(files):
        chunk = order[number * per_file: (number + 1) * per_file]
        plain = b"".join(NETWORK_MAGIC[network] + len(raw).to_bytes(4, "little") + raw for raw in chunk)
        plain += bytes(PADDING)
        (blocks_dir / f"blk{number:05d}.dat").write_bytes(xor_at(plain, key, 0))
    if key is not None:
        (blocks_dir / "xor.dat").write_bytes(key)


def served_raw_blocks(rpc: BitcoindRPC, tip: int) -> dict[str, bytes]:
    """Every block of the served chain, serialized, by hash (from the node, as Core stores them)."""
    hashes = rpc.getblockhashes(list(range(0, tip + 1)))
    return {block_hash: bytes.fromhex(raw) for block_hash, raw in zip(hashes, rpc.getblocks(hashes, 0), strict=True)}


def raw_getblock_calls(node: BitcoindServer) -> list[Any]:
    return [params for method, params in node.calls if method == "getblock" and params[1] == 0]


@pytest.mark.parametrize("key", [None, KEY, bytes(8)], ids=["plain", "xor", "zero-key"])
def test_reader_serves_every_block_by_hash(rpc: BitcoindRPC, builder: ChainBuilder, tmp_path: Path,
                                           key: bytes | None) -> None:
    blocks = served_raw_blocks(rpc, builder.height)
    write_block_files(tmp_path, list(blocks.values()), key=key)
    files = BlockFiles(tmp_path, "regtest")
    for block_hash in reversed(list(blocks)):  # newest first: the whole index gets built early
        assert files.get(block_hash) == blocks[block_hash]
    assert files.get("00" * 32) is None
    assert files.get(next(iter(blocks))) is None  # served blocks leave the index: sync asks once


def test_fetcher_reads_files_and_matches_rpc(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder,
                                             tmp_path: Path) -> None:
    """Same ChainBlocks as the RPC raw path, with no `getblock <hash> 0` call at all."""
    over_rpc = BlockFetcher(rpc, batch_size=3, blocks_per_request=2, raw=True).fetch(1, builder.height)
    write_block_files(tmp_path, list(served_raw_blocks(rpc, builder.height).values()), key=KEY)
    node.calls.clear()
    files = BlockFetcher(rpc, batch_size=3, blocks_per_request=2, raw=True, prefetch=2,
                         block_files=BlockFiles(tmp_path, "regtest"))
    assert files.fetch(1, builder.height) == over_rpc
    assert sum(len(block.txs) for block in over_rpc) >= 5
    assert raw_getblock_calls(node) == []


def test_block_missing_from_files_comes_over_rpc(rpc: BitcoindRPC, node: BitcoindServer,
                                                 builder: ChainBuilder, tmp_path: Path) -> None:
    """The newest block not yet on disk (or the files lag the node): only it is asked over RPC."""
    blocks = served_raw_blocks(rpc, builder.height)
    write_block_files(tmp_path, list(blocks.values())[:-1])
    over_rpc = BlockFetcher(rpc, raw=True).fetch(1, builder.height)
    node.calls.clear()
    fetched = BlockFetcher(rpc, raw=True, block_files=BlockFiles(tmp_path, "regtest")).fetch(1, builder.height)
    assert fetched == over_rpc
    assert raw_getblock_calls(node) == [[builder.block_hash(builder.height), 0]]


def test_corrupted_block_on_disk_is_fetched_over_rpc(rpc: BitcoindRPC, node: BitcoindServer,
                                                     builder: ChainBuilder, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A bit flipped in block 3's header after the files were indexed: its bytes no longer hash
    to it, so that block alone comes over RPC, with a log line saying where the damage is."""
    blocks = served_raw_blocks(rpc, builder.height)
    write_block_files(tmp_path, list(blocks.values()), key=KEY, files=1)
    reader = BlockFiles(tmp_path, "regtest")
    assert reader.get(builder.block_hash(0)) is not None  # the whole file is indexed now (genesis: not synced)
    damaged = builder.block_hash(3)
    data = bytearray((tmp_path / "blk00000.dat").read_bytes())
    offset = xor_at(bytes(data), KEY, 0).index(blocks[damaged])
    data[offset + 68] ^= 0x01  # the header's timestamp
    (tmp_path / "blk00000.dat").write_bytes(bytes(data))
    over_rpc = BlockFetcher(rpc, raw=True).fetch(1, builder.height)
    node.calls.clear()
    fetcher = BlockFetcher(rpc, raw=True, block_files=reader)
    with caplog.at_level(logging.INFO, logger="bns_resolver.chain.blkfiles"):
        assert fetcher.fetch(1, builder.height) == over_rpc
    assert raw_getblock_calls(node) == [[damaged, 0]]
    assert [r.getMessage() for r in caplog.records] == [
        f"block {damaged} is not intact in blk00000.dat at byte {offset} (what is there does not hash to it); "
        "fetching it over RPC"]


def test_block_that_does_not_parse_is_fetched_over_rpc(rpc: BitcoindRPC, node: BitcoindServer,
                                                       builder: ChainBuilder, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Damage past the header (here block 3's transaction count) keeps the header hash intact:
    the scan fails instead, and that request's blocks come over RPC."""
    blocks = served_raw_blocks(rpc, builder.height)
    write_block_files(tmp_path, list(blocks.values()), key=KEY, files=2)
    damaged = builder.block_hash(3)
    path = next(p for p in sorted(tmp_path.glob("blk*.dat"))
                if blocks[damaged] in xor_at(p.read_bytes(), KEY, 0))
    data = bytearray(path.read_bytes())
    offset = xor_at(bytes(data), KEY, 0).index(blocks[damaged])
    data[offset + 80] ^= 0x7F  # the tx count varint: now more txs than the block holds
    path.write_bytes(bytes(data))
    over_rpc = BlockFetcher(rpc, raw=True, blocks_per_request=2).fetch(1, builder.height)
    node.calls.clear()
    fetcher = BlockFetcher(rpc, raw=True, blocks_per_request=2, block_files=BlockFiles(tmp_path, "regtest"))
    with caplog.at_level(logging.WARNING, logger="bns_resolver.chain.fetcher"):
        assert fetcher.fetch(1, builder.height) == over_rpc
    assert raw_getblock_calls(node) == [[builder.block_hash(3), 0], [builder.block_hash(4), 0]]
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "blocks 3..4 as read from the block files do not parse"]


def test_damaged_header_before_indexing_means_not_found(rpc: BitcoindRPC, node: BitcoindServer,
                                                        builder: ChainBuilder, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Damage already there when the files are scanned: the record hashes to some other block,
    so the one asked for is not found and comes over RPC."""
    blocks = served_raw_blocks(rpc, builder.height)
    write_block_files(tmp_path, list(blocks.values()))
    damaged = builder.block_hash(4)
    path = next(p for p in sorted(tmp_path.glob("blk*.dat")) if blocks[damaged] in p.read_bytes())
    data = bytearray(path.read_bytes())
    data[data.index(blocks[damaged]) + 70] ^= 0x80
    path.write_bytes(bytes(data))
    node.calls.clear()
    fetcher = BlockFetcher(rpc, raw=True, block_files=BlockFiles(tmp_path, "regtest"))
    with caplog.at_level(logging.INFO, logger="bns_resolver.chain.blkfiles"):
        assert fetcher.fetch(1, builder.height) == BlockFetcher(rpc, raw=True).fetch(1, builder.height)
    assert raw_getblock_calls(node)[0] == [damaged, 0]
    assert f"block {damaged} is not in the block files in {tmp_path}; fetching it over RPC" in caplog.messages


def test_torn_size_field_stops_that_file_only(rpc: BitcoindRPC, builder: ChainBuilder, tmp_path: Path) -> None:
    """A garbage record ends the scan of its file; blocks in other files are still served."""
    blocks = list(served_raw_blocks(rpc, builder.height).items())
    write_block_files(tmp_path, [raw for _, raw in blocks], files=2)
    first = tmp_path / "blk00000.dat"
    data = bytearray(first.read_bytes())
    data[4:8] = (10**9).to_bytes(4, "little")
    first.write_bytes(bytes(data))
    files = BlockFiles(tmp_path, "regtest")
    assert files.get(blocks[-1][0]) == blocks[-1][1]
    assert files.get(blocks[1][0]) is None  # it sits in the torn file


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "xor"])
def test_sync_from_files_builds_the_rpc_index(node: BitcoindServer, tmp_path: Path, key: bytes | None) -> None:
    """A corpus chain of reference-recorded BNS operations: the same consensus hash at every
    block and the same index as the RPC sync, with no block fetched over RPC."""
    matches = [p for p in corpus_files() if p.parent.name == "0.14.1"
               and p.name == "name_preorder_register_update_accounts.json.gz"]
    if not matches:
        pytest.skip("corpus scenario 0.14.1/name_preorder_register_update_accounts not available")
    scenario = load_scenario(matches[0])
    node.serve_builder(corpus_chain(scenario.data))
    rpc = BitcoindRPC(node.url)
    write_block_files(tmp_path / "blocks", list(served_raw_blocks(rpc, node.tip_height).values()), key=key,
                      files=4)
    rpc.close()
    over_rpc = synced_index(node, tmp_path / "rpc")
    node.calls.clear()
    from_files = synced_index(node, tmp_path / "files", blocks_dir=tmp_path / "blocks")
    assert over_rpc[0][-1] == (int(scenario.data["blocks"][-1]["height"]),
                               scenario.data["blocks"][-1]["consensus_hash"])
    assert any(rows for rows in over_rpc[1].values())
    assert from_files == over_rpc
    assert raw_getblock_calls(node) == []


def test_missing_blocks_dir_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-blocks"
    with pytest.raises(ConfigError) as flag:
        load_settings(None, env={"BNS_RESOLVER_DATA_DIR": str(tmp_path)}, bitcoind="http://u:p@127.0.0.1:1",
                      bitcoind_blocks_dir=str(missing))
    assert str(flag.value) == (f"--bitcoind-blocks-dir {str(missing)!r}: {missing} is not a directory "
                               "(bitcoind's blocks/ folder, holding blk*.dat)")
    config = tmp_path / "bns.toml"
    config.write_text(f'[chain]\nbitcoind = "http://u:p@127.0.0.1:1"\nblocks_dir = "{missing}"\n')
    with pytest.raises(ConfigError) as file:
        load_settings(config, env={"BNS_RESOLVER_DATA_DIR": str(tmp_path)})
    assert str(file.value).startswith(f"{config}: [chain] blocks_dir: {missing} is not a directory")
    assert "\n" not in str(flag.value) + str(file.value)


def test_datadir_instead_of_blocks_dir_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "blk00000.dat").write_bytes(bytes(64))
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"BNS_RESOLVER_DATA_DIR": str(tmp_path)}, bitcoind="http://u:p@127.0.0.1:1",
                      bitcoind_blocks_dir=str(tmp_path))
    assert str(info.value) == (f"--bitcoind-blocks-dir {str(tmp_path)!r}: {tmp_path} holds no blk*.dat files; "
                               f"did you mean {tmp_path / 'blocks'}?")


def test_wrong_networks_files_say_so_once(rpc: BitcoindRPC, node: BitcoindServer, builder: ChainBuilder,
                                          tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Mainnet-framed records read as regtest: nothing matches; one warning, every block over RPC."""
    write_block_files(tmp_path, list(served_raw_blocks(rpc, builder.height).values()), network="mainnet")
    node.calls.clear()
    fetcher = BlockFetcher(rpc, raw=True, block_files=BlockFiles(tmp_path, "regtest"))
    with caplog.at_level(logging.WARNING, logger="bns_resolver.chain.blkfiles"):
        assert fetcher.fetch(1, builder.height) == BlockFetcher(rpc, raw=True).fetch(1, builder.height)
    assert caplog.messages == [f"{tmp_path} holds no block files of this network (magic fabfbfda): "
                               "every block comes over RPC"]
    assert len(raw_getblock_calls(node)) == 2 * builder.height


def test_blocks_dir_flag_reaches_the_sync(tmp_path: Path) -> None:
    os.mkdir(tmp_path / "blocks")
    (tmp_path / "blocks" / "blk00000.dat").write_bytes(b"")
    settings = load_settings(None, env={"BNS_RESOLVER_DATA_DIR": str(tmp_path)},
                             bitcoind="http://u:p@127.0.0.1:1", bitcoind_blocks_dir=str(tmp_path / "blocks"))
    assert settings.chain.blocks_dir == tmp_path / "blocks"


def test_cli_sync_reads_the_blocks_dir(node: BitcoindServer, tmp_path: Path) -> None:
    """`bns-resolver sync --bitcoind-blocks-dir`: the reference's consensus hash, no block over RPC;
    a blocks dir that is not there: exit 2 and one line on stderr, nothing written."""
    from tests.test_sync_cli import REGTEST_0141 as CONFIG
    from tests.test_sync_cli import _cli, _scenario

    scenario: Any = _scenario("name_preorder_register_update_accounts.json.gz")
    node.serve_builder(corpus_chain(scenario.data))
    rpc = BitcoindRPC(node.url)
    write_block_files(tmp_path / "blocks", list(served_raw_blocks(rpc, node.tip_height).values()), key=KEY)
    rpc.close()
    config = tmp_path / "regtest.toml"
    config.write_text(CONFIG)
    data = str(tmp_path / "data")
    missing = _cli("sync", "--config", str(config), "--data-dir", data, "--bitcoind", node.url,
                   "--bitcoind-blocks-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and f"{tmp_path / 'nope'} is not a directory" in missing.stderr
    assert not (tmp_path / "data").exists()
    node.calls.clear()
    synced = _cli("sync", "--config", str(config), "--data-dir", data, "--bitcoind", node.url,
                  "--bitcoind-blocks-dir", str(tmp_path / "blocks"))
    assert synced.returncode == 0, synced.stderr
    status = json.loads(_cli("status", "--json", "--data-dir", data).stdout)
    assert (status["height"], status["consensus_hash"]) == (int(scenario.data["blocks"][-1]["height"]),
                                                            scenario.data["blocks"][-1]["consensus_hash"])
    assert raw_getblock_calls(node) == []
