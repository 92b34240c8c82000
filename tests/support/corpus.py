"""Loader for the consensus corpus (shared/data/consensus-corpus, gz JSON per scenario).

Turns a scenario into `ChainBlock`s the way a bitcoind stand-in would serve them:
a coinbase without OP_RETURN at position 0, each tx at its logged vtxindex, and
every input's spent output taken from the scenario's own txs or, failing that,
from `external_prevouts` (derived from the scriptSig; value unknown, reported 0).

A scenario may have been recorded by one of several generations of reference code that its file
does not tell apart (the 0.14 set, bns/networks.py `corpus_generations`): `profiles` holds one
profile per candidate and `replay` says how far each gets; a scenario conforms when one of them
reproduces every block.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitcoin.core import CTransaction, b2lx, x

from bns_resolver.bns.engine import BnsEngine
from bns_resolver.bns.networks import NetworkProfile, corpus_generations, from_corpus_config
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.types import ChainBlock, ChainTx, TxInput, TxOutput
from bns_resolver.chain.virtualchain import apply_block

REPO_ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    return Path(os.environ.get("BNS_CORPUS_DIR", REPO_ROOT.parent / "shared" / "data" / "consensus-corpus"))


def corpus_files() -> list[Path]:
    return sorted(corpus_dir().rglob("*.json.gz"))


@dataclass(frozen=True)
class Scenario:
    path: Path
    data: dict[str, Any]
    profiles: tuple[NetworkProfile, ...]  # one per candidate generation; () for aborted logs
    blocks: tuple[ChainBlock, ...]

    @property
    def profile(self) -> NetworkProfile | None:
        """The first candidate (None for aborted logs without blocks)."""
        return self.profiles[0] if self.profiles else None

    @property
    def label(self) -> str:
        return f"{self.data['version']}/{self.data['scenario']}"

    @property
    def replayable(self) -> bool:
        return bool(self.data.get("checks", {}).get("replayable", True))

    def replayable_heights(self) -> set[int]:
        """All heights, or for `replayable: false` files those before the first bad block."""
        heights = {block["height"] for block in self.data["blocks"]}
        if self.replayable:
            return heights
        bad = self.bad_heights()
        return {h for h in heights if not bad or h < min(bad)}

    def bad_heights(self) -> set[int]:
        """Heights named by a failed check: block `issues`, any `height`/`bad_heights` entry
        under `checks`, and blocks with an input whose spent output could not be derived."""
        bad = {block["height"] for block in self.data["blocks"] if block.get("issues")}
        _collect_heights(self.data.get("checks", {}), bad)
        for block in self.blocks:
            if any(txin.prevout is None for tx in block.txs[1:] for txin in tx.inputs):
                bad.add(block.height)
        return bad


def _collect_heights(node: Any, out: set[int], key: str = "") -> None:
    if isinstance(node, dict):
        for child_key, child in node.items():
            if child_key == "height" and isinstance(child, int):
                out.add(child)
            else:
                _collect_heights(child, out, child_key)
    elif isinstance(node, list):
        for item in node:
            if key in ("bad_heights", "bad") and isinstance(item, int):
                out.add(item)
            else:
                _collect_heights(item, out, key)


def _coinbase(height: int) -> ChainTx:
    txin = TxInput(prev_txid="00" * 32, prev_vout=0xFFFFFFFF, script_sig_hex=f"{height:08x}", prevout=None)
    return ChainTx(txid=f"{height:064x}", vtxindex=0, inputs=(txin,), outputs=(TxOutput(50 * 10**8, "51"),))


def _decode(raw: str) -> CTransaction:
    return CTransaction.deserialize(x(raw))


def _chain_tx(tx: CTransaction, vtxindex: int, known: dict[str, CTransaction], external: dict[str, Any]) -> ChainTx:
    inputs = []
    for txin in tx.vin:
        prev_txid = b2lx(txin.prevout.hash)
        vout = txin.prevout.n
        parent = known.get(prev_txid)
        if parent is not None:
            out = parent.vout[vout]
            prevout = TxOutput(out.nValue, out.scriptPubKey.hex())
        else:
            derived = external.get(f"{prev_txid}:{vout}")
            prevout = TxOutput(0, derived["script_pubkey"]) if derived else None
        inputs.append(TxInput(prev_txid, vout, txin.scriptSig.hex(), prevout))
    outputs = tuple(TxOutput(o.nValue, o.scriptPubKey.hex()) for o in tx.vout)
    return ChainTx(txid=b2lx(tx.GetTxid()), vtxindex=vtxindex, inputs=tuple(inputs), outputs=outputs)


def load_scenario(path: Path) -> Scenario:
    with gzip.open(path, "rt") as handle:
        data = json.load(handle)
    config, version = data["config"], data["version"]
    profiles = tuple(from_corpus_config(config, version, rules)
                     for rules in corpus_generations(config, version)) if data["blocks"] else ()
    known: dict[str, CTransaction] = {}
    for block in data["blocks"]:
        for raw in block["txs"]:
            tx = _decode(raw)
            known[b2lx(tx.GetTxid())] = tx
    external = data.get("external_prevouts", {})
    blocks = []
    prev_hash = "00" * 32
    for block in data["blocks"]:
        height = block["height"]
        txs = [_coinbase(height)]
        for raw, vtxindex in zip(block["txs"], block["tx_vtxindex"]):
            txs.append(_chain_tx(_decode(raw), vtxindex, known, external))
        txs.sort(key=lambda t: t.vtxindex)
        block_hash = block.get("regtest_block_hash") or f"{height:064x}"
        blocks.append(ChainBlock(height=height, block_hash=block_hash, prev_hash=prev_hash, txs=tuple(txs)))
        prev_hash = block_hash
    return Scenario(path=path, data=data, profiles=profiles, blocks=tuple(blocks))


@dataclass(frozen=True)
class Replay:
    """A direct replay of a scenario under one profile: the outcome of every block replayed, up to
    and including the first whose ops hash or consensus hash differs from the reference's."""

    profile: NetworkProfile
    outcomes: tuple[tuple[ChainBlock, Any], ...]  # (block, the engine's BlockOutcome)
    divergence: int | None  # the first diverging height; None: every replayable block matched


def replay(scenario: Scenario, profile: NetworkProfile) -> Replay:
    engine = BnsEngine(profile, MemoryStateStore())
    heights = scenario.replayable_heights()
    outcomes = []
    for block, recorded in zip(scenario.blocks, scenario.data["blocks"]):
        if block.height not in heights:
            break
        outcome = apply_block(engine.store, engine, block)
        outcomes.append((block, outcome))
        if (outcome.ops_hash, outcome.consensus_hash) != (recorded["ops_hash"], recorded["consensus_hash"]):
            return Replay(profile, tuple(outcomes), block.height)
    return Replay(profile, tuple(outcomes), None)


def best_replay(scenario: Scenario) -> Replay:
    """The first candidate generation that reproduces every block, else the one that got furthest."""
    replays = [replay(scenario, profile) for profile in scenario.profiles]
    for candidate in replays:
        if candidate.divergence is None:
            return candidate
    return max(replays, key=lambda r: r.divergence or 0)


def serialized_accepted_ops(block: dict[str, Any]) -> list[str]:
    """The strings the reference hashed, rebuilt from `accepted_ops` (names are not hashed)."""
    out = []
    for op in block["accepted_ops"]:
        values = ",".join(f"{len(v)}:{v}" for _, v in op["fields"])
        out.append(f"{op['op']}:{values}")
    return out
