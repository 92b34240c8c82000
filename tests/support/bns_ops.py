"""BNS v1 operations as real signed regtest transactions (on top of `chainbuilder.ChainBuilder`).

`BnsChain` wraps a builder and replays every block it mines through an in-memory
`BnsEngine` (the default regtest profile: v22 rules, first block 256, mainnet
epochs), so scenarios can quote fresh consensus hashes the way a wallet asks its
node for one.  The op helpers build the output layouts of bns-v1.md §1.4:

* NAME_PREORDER: exactly 3 outputs `OP_RETURN, change, burn` (the whole wallet
  balance is spent, so the builder appends no 4th change output);
* NAME_REGISTRATION / NAME_TRANSFER / NAMESPACE_REVEAL: `OP_RETURN, recipient, change`;
* NAMESPACE_PREORDER: `OP_RETURN, change, burn`;
* NAME_UPDATE / NAME_REVOKE / NAMESPACE_READY: `OP_RETURN, change`.

`replay` runs a fresh engine over a builder's blocks: the reference the tests compare
an index built through bitcoind RPC with.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from bitcoin.core import CBlock, CScript, b2lx
from bitcoin.core.script import OP_RETURN

from bns_resolver.chain.virtualchain import apply_block
from bns_resolver.base58 import b58check_encode
from bns_resolver.bns.engine import BlockOutcome, BnsEngine
from bns_resolver.bns.names import (
    hash_name,
    name_consensus_hash,
    name_hash128,
    split_name,
)
from bns_resolver.bns.pricing import price_name, price_namespace
from bns_resolver.bns.networks import NetworkProfile
from bns_resolver.bns.state import MemoryStateStore
from bns_resolver.chain.types import ChainBlock, ChainTx, TxInput, TxOutput
from bns_resolver.chainsync import build_profile
from bns_resolver.config import ChainSettings
from bns_resolver.hashing import hash160, hash160_hex
from tests.support.chainbuilder import DEFAULT_FEE, ChainBuilder, Wallet

MAGIC = b"id"
BURN_SCRIPT = bytes.fromhex("76a914" + "00" * 20 + "88ac")
DUST = 5_500
# The .id namespace's price function (bns-v1.md §3.7): 5 letters 400 000 sat, 6 letters 100 000.
ID_LIKE = {"lifetime": 52595, "coeff": 250, "base": 4, "buckets": (6, 5, 4, 3, 2, 1) + (0,) * 10,
           "nonalpha_discount": 4, "no_vowel_discount": 4, "version": 1}


def regtest_profile() -> NetworkProfile:
    """What `bns-resolver sync --network regtest` uses with no [chain] overrides."""
    return build_profile(ChainSettings(network="regtest"))


class _Outputs:
    """Every output the chain ever created: the prevouts the engine needs for senders."""

    def __init__(self) -> None:
        self._outs: dict[tuple[str, int], TxOutput] = {}

    def convert(self, block: CBlock, height: int) -> ChainBlock:
        txs = []
        for index, tx in enumerate(block.vtx):
            txid = b2lx(tx.GetTxid())
            inputs = []
            for txin in tx.vin:
                prev = None if index == 0 else self._outs[(b2lx(txin.prevout.hash), txin.prevout.n)]
                inputs.append(TxInput(b2lx(txin.prevout.hash), txin.prevout.n, bytes(txin.scriptSig).hex(), prev))
            outputs = tuple(TxOutput(o.nValue, bytes(o.scriptPubKey).hex()) for o in tx.vout)
            for n, out in enumerate(outputs):
                self._outs[(txid, n)] = out
            txs.append(ChainTx(txid, index, tuple(inputs), outputs))
        return ChainBlock(height, b2lx(block.GetHash()), b2lx(block.hashPrevBlock), tuple(txs))


def replay(blocks: Sequence[CBlock], profile: NetworkProfile | None = None) -> tuple[BnsEngine, list[BlockOutcome]]:
    """A fresh in-memory engine run over `blocks` (genesis first): the reference result."""
    profile = profile or regtest_profile()
    engine = BnsEngine(profile, MemoryStateStore())
    outputs = _Outputs()
    outcomes = []
    for height, block in enumerate(blocks):
        chain_block = outputs.convert(block, height)
        if height >= profile.first_block:
            outcomes.append(apply_block(engine.store, engine, chain_block))
    return engine, outcomes


@dataclass
class BnsChain:
    """A regtest chain builder whose blocks an in-memory BNS engine follows as they are mined."""

    builder: ChainBuilder | None = None
    profile: NetworkProfile = field(default_factory=regtest_profile)
    outcomes: dict[int, BlockOutcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.builder is None:
            self.builder = ChainBuilder(network="regtest", premine=self.profile.first_block - 1)
        self.store = MemoryStateStore()
        self.engine = BnsEngine(self.profile, self.store)
        self._outputs = _Outputs()
        self._seen = 0
        self._follow()

    # -- chain ---------------------------------------------------------------------
    @property
    def chain(self) -> ChainBuilder:
        assert self.builder is not None
        return self.builder

    @property
    def height(self) -> int:
        return self.chain.height

    @property
    def blocks(self) -> list[CBlock]:
        return self.chain.blocks

    def mine(self, count: int = 1) -> list[BlockOutcome]:
        """Mine `count` blocks (the first takes the mempool) and run them through the engine."""
        self.chain.mine(count)
        return self._follow()

    def mine_to(self, height: int) -> None:
        if height > self.height:
            self.mine(height - self.height)

    def _follow(self) -> list[BlockOutcome]:
        new = []
        while self._seen < len(self.chain.blocks):
            height = self._seen
            block = self._outputs.convert(self.chain.blocks[height], height)
            if height >= self.profile.first_block:
                outcome = apply_block(self.engine.store, self.engine, block)
                self.outcomes[height] = outcome
                new.append(outcome)
            self._seen += 1
        return new

    def consensus_hash(self, height: int | None = None) -> str:
        """The consensus hash of `height` (default: the newest block), as a wallet would quote it."""
        height = self.height if height is None else height
        if height < self.profile.first_block:
            return self.profile.genesis_consensus_hash
        return self.outcomes[height].consensus_hash

    def accepted(self, height: int) -> list[tuple[str, str | None]]:
        """(opcode, name or namespace) of each op the engine accepted in block `height`."""
        return [(a.opcode, a.fqn or a.namespace_id) for a in self.outcomes[height].accepted]

    def fork(self, depth: int, *, tag: bytes = b"fork") -> BnsChain:
        """A competing branch dropping the newest `depth` blocks (engine state replayed to the fork)."""
        return BnsChain(self.chain.fork(depth, tag=tag), self.profile)

    # -- wallets ----------------------------------------------------------------------
    def wallet(self, label: str, sats: int = 100_000_000) -> Wallet:
        """A new p2pkh wallet funded by the miner (the funding confirms with the next block)."""
        wallet = self.chain.new_wallet(label)
        if sats:
            self.chain.fund(wallet, sats)
        return wallet

    # -- raw sending ----------------------------------------------------------------------
    def send(self, wallet: Wallet, opchar: str, body: bytes,
             outputs: Sequence[tuple[bytes, int]] = (), *, change_at: int | None = None,
             fee: int = DEFAULT_FEE) -> str:
        """Queue `OP_RETURN id<opchar><body>` + outputs; returns the txid.

        change_at=None: the builder's change goes last.  change_at=i: the whole wallet
        balance is spent and the change is output i (so no extra output appears).
        """
        op_return = (CScript([OP_RETURN, MAGIC + opchar.encode() + body]), 0)
        outs: list[tuple[bytes | CScript, int]] = [op_return, *outputs]
        if change_at is not None:
            change = self.chain.balance(wallet) - sum(v for _, v in outs) - fee
            if change <= 0:
                raise ValueError(f"{wallet.label} cannot pay {sum(v for _, v in outs)} + fee")
            outs.insert(change_at, (bytes(wallet.script_pubkey), change))
        tx = self.chain.spend(wallet, outs, fee=fee)
        return b2lx(tx.GetTxid())


def script_hex(wallet: Wallet) -> str:
    return bytes(wallet.script_pubkey).hex()


def address(wallet: Wallet, profile: NetworkProfile | None = None) -> str:
    """The wallet's p2pkh address on the profile's network (independent of bitcoinlib's global params)."""
    version = (profile or regtest_profile()).p2pkh_version
    return b58check_encode(version, hash160(wallet.pubkey))


# -- namespace operations --------------------------------------------------------------------
def namespace_preorder(chain: BnsChain, sender: Wallet, namespace_id: str, reveal_to: Wallet, *,
                       fee: int | None = None, consensus_hash: str | None = None) -> str:
    """NAMESPACE_PREORDER `*`: hash_name(id, sender script, reveal address) + consensus hash; burn outputs[2]."""
    fee = price_namespace(namespace_id, chain.height + 1, chain.profile) if fee is None else fee
    preorder_hash = hash_name(namespace_id, script_hex(sender), address(reveal_to, chain.profile))
    ch = consensus_hash or chain.consensus_hash()
    return chain.send(sender, "*", bytes.fromhex(preorder_hash + ch), [(BURN_SCRIPT, fee)], change_at=1)


def namespace_reveal(chain: BnsChain, sender: Wallet, namespace_id: str, reveal_to: Wallet,
                     params: dict | None = None) -> str:
    """NAMESPACE_REVEAL `&`: lifetime, coeff, base, bucket nibbles, discounts, version, id; outputs[1] = reveal address."""
    p = dict(ID_LIKE, **(params or {}))
    buckets = p["buckets"]
    body = (int(p["lifetime"]).to_bytes(4, "big") + bytes([p["coeff"], p["base"]])
            + bytes((buckets[i] << 4) | buckets[i + 1] for i in range(0, 16, 2))
            + bytes([(p["nonalpha_discount"] << 4) | p["no_vowel_discount"]])
            + int(p["version"]).to_bytes(2, "big") + namespace_id.encode("ascii"))
    return chain.send(sender, "&", body, [(bytes(reveal_to.script_pubkey), DUST)])


def namespace_ready(chain: BnsChain, revealer: Wallet, namespace_id: str) -> str:
    """NAMESPACE_READY `!`: `.` + id, sent by the reveal address."""
    return chain.send(revealer, "!", b"." + namespace_id.encode("ascii"))


def name_price(chain: BnsChain, fqn: str) -> float | int:
    label, namespace_id = split_name(fqn)
    namespace = chain.store.get_namespace(namespace_id)
    assert namespace is not None, f"namespace {namespace_id} is not known yet"
    return price_name(label, namespace, chain.height + 1, chain.profile)


# -- name operations ----------------------------------------------------------------------------
def preorder(chain: BnsChain, sender: Wallet, fqn: str, recipient: Wallet | None = None, *,
             fee: int | None = None, consensus_hash: str | None = None) -> str:
    """NAME_PREORDER `?`: hash_name(fqn, sender script, recipient address) + consensus hash;
    exactly 3 outputs, the burn (default: the name's price) in outputs[2]."""
    recipient = recipient or sender
    fee = int(name_price(chain, fqn)) if fee is None else fee
    preorder_hash = hash_name(fqn, script_hex(sender), address(recipient, chain.profile))
    ch = consensus_hash or chain.consensus_hash()
    return chain.send(sender, "?", bytes.fromhex(preorder_hash + ch), [(BURN_SCRIPT, fee)], change_at=1)


def register(chain: BnsChain, sender: Wallet, fqn: str, recipient: Wallet | None = None) -> str:
    """NAME_REGISTRATION `:` (epoch 1 form: the bare fqn); outputs[1] = the new owner, 3 outputs."""
    recipient = recipient or sender
    return chain.send(sender, ":", fqn.encode("ascii"), [(bytes(recipient.script_pubkey), DUST)])


def update(chain: BnsChain, sender: Wallet, fqn: str, value_hash: str, *,
           consensus_hash: str | None = None) -> str:
    """NAME_UPDATE `+`: hash128(fqn ‖ consensus hash) + value hash."""
    ch = consensus_hash or chain.consensus_hash()
    return chain.send(sender, "+", bytes.fromhex(name_consensus_hash(fqn, ch) + value_hash))


def transfer(chain: BnsChain, sender: Wallet, fqn: str, recipient: Wallet, *, keep_value: bool = True,
             consensus_hash: str | None = None) -> str:
    """NAME_TRANSFER `>`: disposition + name_hash128 + consensus hash; outputs[1] = the new owner."""
    ch = consensus_hash or chain.consensus_hash()
    body = (b">" if keep_value else b"~") + bytes.fromhex(name_hash128(fqn) + ch)
    return chain.send(sender, ">", body, [(bytes(recipient.script_pubkey), DUST)])


def renew(chain: BnsChain, sender: Wallet, fqn: str, *, fee: int | None = None) -> str:
    """NAME_RENEWAL `:` (bare fqn): outputs `OP_RETURN, owner, change, burn` (4 outputs, so v22
    reads it as a renewal; 2016-17 rules by the missing preorder), paying the name's price."""
    fee = int(name_price(chain, fqn)) if fee is None else fee
    return chain.send(sender, ":", fqn.encode("ascii"),
                      [(bytes(sender.script_pubkey), DUST), (BURN_SCRIPT, fee)], change_at=2)


def revoke(chain: BnsChain, sender: Wallet, fqn: str) -> str:
    """NAME_REVOKE `~`: the fqn."""
    return chain.send(sender, "~", fqn.encode("ascii"))


# -- zone files -----------------------------------------------------------------------------------
def zonefile(fqn: str, a: str, *, uri: str | None = None, txt: str | None = None, www: str | None = None) -> bytes:
    """A BNS zone file for `fqn` with an apex A record (and optional URI/TXT/www A)."""
    lines = [f"$ORIGIN {fqn}", "$TTL 3600", f"@ IN A {a}"]
    if uri:
        lines.append(f'@ IN URI 10 1 "{uri}"')
    if txt:
        lines.append(f'@ IN TXT "{txt}"')
    if www:
        lines.append(f"www IN A {www}")
    return ("\n".join(lines) + "\n").encode()


def zonefile_hash(content: bytes) -> str:
    return hash160_hex(content)


# -- the issue-4 scenario ---------------------------------------------------------------------------
NAMESPACE = "e2etests"


@dataclass
class Scenario:
    """The chain of tests/e2e/test_chain_to_dns.py and what each name should end as."""

    chain: BnsChain
    wallets: dict[str, Wallet]
    zonefiles: dict[str, bytes]  # value hash -> content (the zone-file folder)
    withheld: dict[str, bytes]  # value hash -> content NOT put in the folder
    tampered: dict[str, bytes]  # value hash -> other content, put in the folder under that hash
    namespace: str = NAMESPACE

    def fqn(self, label: str) -> str:
        return f"{label}.{self.namespace}"

    def write_zonefiles(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for value_hash, content in [*self.zonefiles.items(), *self.tampered.items()]:
            (folder / f"{value_hash}.txt").write_bytes(content)
        return folder


def build_scenario(*, tail_blocks: int = 0) -> Scenario:
    """Namespace launch, five names (updated, transferred, revoked, zone file withheld or
    tampered with), and
    invalid ops that must all be rejected; the revoke sits in the third-newest block so a
    3-block reorg can drop it.  `tail_blocks` extra empty blocks are mined before the revoke."""
    chain = BnsChain()
    ns = NAMESPACE
    w = {label: chain.wallet(label) for label in
         ("creator", "revealer", "alice", "bob", "carol", "erin", "frank", "dave", "mallory", "cheapo", "staler")}
    first = chain.profile.first_block
    chain.mine_to(first)  # 256: funding confirms
    files: dict[str, bytes] = {}

    def zf(label: str, a: str, **kw: str) -> str:
        content = zonefile(f"{label}.{ns}", a, **kw)
        files[zonefile_hash(content)] = content
        return zonefile_hash(content)

    namespace_preorder(chain, w["creator"], ns, w["revealer"])
    chain.mine()  # 257
    namespace_reveal(chain, w["creator"], ns, w["revealer"])
    chain.mine()  # 258
    namespace_ready(chain, w["revealer"], ns)
    chain.mine()  # 259
    for label in ("alice", "bob", "carol", "erin", "frank"):
        preorder(chain, w[label], f"{label}.{ns}")
    preorder(chain, w["cheapo"], f"cheap.{ns}", fee=int(name_price(chain, f"cheap.{ns}")) - 1)  # underpays
    chain.mine()  # 260
    for label in ("alice", "bob", "carol", "erin", "frank"):
        register(chain, w[label], f"{label}.{ns}")
    register(chain, w["cheapo"], f"cheap.{ns}")  # preorder paid too little
    register(chain, w["mallory"], f"orphan.{ns}")  # never preordered
    chain.mine()  # 261
    alice = zf("alice", "192.0.2.1", uri="https://alice.example/", txt="hello from alice", www="192.0.2.11")
    bob = zf("bob", "192.0.2.2", uri="https://bob.example/")
    carol = zf("carol", "192.0.2.3")
    erin_content = zonefile(f"erin.{ns}", "192.0.2.5")
    update(chain, w["alice"], f"alice.{ns}", alice)
    update(chain, w["bob"], f"bob.{ns}", bob)
    update(chain, w["carol"], f"carol.{ns}", carol)
    update(chain, w["erin"], f"erin.{ns}", zonefile_hash(erin_content))
    frank_content = zonefile(f"frank.{ns}", "192.0.2.6")
    update(chain, w["frank"], f"frank.{ns}", zonefile_hash(frank_content))
    chain.mine()  # 262
    evil = zf("bob", "198.51.100.66")
    update(chain, w["mallory"], f"bob.{ns}", evil)  # not the owner
    revoke(chain, w["mallory"], f"alice.{ns}")  # not the owner
    transfer(chain, w["mallory"], f"alice.{ns}", w["mallory"])  # not the owner (and to herself)
    transfer(chain, w["bob"], f"bob.{ns}", w["dave"], keep_value=True)
    chain.mine()  # 263
    stale_ch = chain.consensus_hash(first + 1)
    chain.mine(25)  # 288: CH(257) is now older than the 24-block window
    preorder(chain, w["staler"], f"stale.{ns}", consensus_hash=stale_ch)
    chain.mine()  # 289
    register(chain, w["staler"], f"stale.{ns}")
    update(chain, w["bob"], f"bob.{ns}", evil)  # bob no longer owns it
    chain.mine()  # 290
    if tail_blocks:
        chain.mine(tail_blocks)
    revoke(chain, w["carol"], f"carol.{ns}")
    chain.mine(3)  # the revoke is 3rd-newest
    # The newest blocks must confirm nothing further.
    forged = zonefile(f"frank.{ns}", "203.0.113.66")
    return Scenario(chain, w, files, {zonefile_hash(erin_content): erin_content},
                    {zonefile_hash(frank_content): forged})


# -- driving the CLI and reading its index ----------------------------------------------------------
SYNC_CONFIG = """
[chain]
confirmations = 1
"""
SERVE_CONFIG = """
[namespaces]
icann_tlds = {{ {namespace} = false }}
"""
# sync_state keys that say when, not what (a fresh build and a resumed one differ there),
# and what a DNS server that ran on the directory noted about namespace policies.
VOLATILE_STATE = {"generation", "tip", "namespace_policy"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bns_resolver.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def sync_args(url: str, data_dir: Path, config: Path, zonefiles: Path | None = None) -> list[str]:
    args = ["sync", "--network", "regtest", "--bitcoind", url, "--config", str(config), "--data-dir", str(data_dir)]
    if zonefiles is not None:
        args += ["--zonefile-source", f"dir:{zonefiles}"]
    return args


def write_config(path: Path, text: str = SYNC_CONFIG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def index_file(data_dir: Path) -> Path:
    return data_dir / "index.sqlite"


def read_only(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{index_file(data_dir)}?mode=ro", uri=True, timeout=5)


def synced_height(data_dir: Path) -> int | None:
    """sync_state.height as another process sees it (None before the first commit)."""
    if not index_file(data_dir).exists():
        return None
    try:
        with closing(read_only(data_dir)) as conn:
            row = conn.execute("SELECT value FROM sync_state WHERE key = 'height'").fetchone()
    except sqlite3.OperationalError:  # schema not created yet, or a writer holds the lock
        return None
    return int(row[0]) if row and row[0] else None


def dump_index(data_dir: Path) -> dict[str, list[tuple]]:
    """The chain-derived tables, sorted, without row ids or volatile bookkeeping."""
    with closing(read_only(data_dir)) as conn:
        out: dict[str, list[tuple]] = {}
        for table in ("names", "namespaces", "chain_records", "blocks"):
            out[table] = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        out["sync_state"] = sorted(row for row in conn.execute("SELECT key, value FROM sync_state")
                                   if row[0] not in VOLATILE_STATE)
        out["undo_log"] = sorted(conn.execute("SELECT height, kind, key, before_json FROM undo_log").fetchall(),
                                 key=repr)
    return out


def diff_dumps(a: dict[str, list[tuple]], b: dict[str, list[tuple]], limit: int = 5) -> str:
    """A short human-readable difference of two dumps ('' when equal)."""
    lines = []
    for table in sorted(set(a) | set(b)):
        rows_a, rows_b = set(a.get(table, [])), set(b.get(table, []))
        for row in sorted(rows_a - rows_b, key=repr)[:limit]:
            lines.append(f"{table}: only in first: {row}")
        for row in sorted(rows_b - rows_a, key=repr)[:limit]:
            lines.append(f"{table}: only in second: {row}")
        if len(a.get(table, [])) != len(b.get(table, [])):
            lines.append(f"{table}: {len(a.get(table, []))} rows vs {len(b.get(table, []))}")
    return "\n".join(lines)


def launch_namespace(chain: BnsChain, namespace_id: str = NAMESPACE,
                     params: dict | None = None) -> tuple[Wallet, Wallet]:
    """Preorder, reveal (`params` over the .id-like defaults) and ready `namespace_id` in three
    consecutive blocks; (creator, revealer)."""
    creator, revealer = chain.wallet("creator"), chain.wallet("revealer")
    chain.mine_to(max(chain.height + 1, chain.profile.first_block))
    namespace_preorder(chain, creator, namespace_id, revealer)
    chain.mine()
    namespace_reveal(chain, creator, namespace_id, revealer, params)
    chain.mine()
    namespace_ready(chain, revealer, namespace_id)
    chain.mine()
    return creator, revealer


def build_long_chain(bns_blocks: int = 400, *, every: int = 7) -> BnsChain:
    """`bns_blocks` blocks after the first BNS block with name ops spread over all of them:
    every `every` blocks one name is preordered, registered two blocks later, updated, and
    some are transferred or revoked later on, so any kill point leaves work on both sides."""
    chain = BnsChain()
    launch_namespace(chain)
    end = chain.profile.first_block + bns_blocks
    owners: list[tuple[str, Wallet]] = []
    n = 0
    while chain.height + 6 < end:
        label = f"name{n:03d}x"
        owner = chain.wallet(f"owner{n}", 5_000_000)
        chain.mine()
        preorder(chain, owner, f"{label}.{NAMESPACE}")
        chain.mine()
        register(chain, owner, f"{label}.{NAMESPACE}")
        chain.mine()
        update(chain, owner, f"{label}.{NAMESPACE}", zonefile_hash(zonefile(f"{label}.{NAMESPACE}", "192.0.2.7")))
        owners.append((label, owner))
        if n % 3 == 1:
            prev_label, prev_owner = owners[-2]
            transfer(chain, prev_owner, f"{prev_label}.{NAMESPACE}", owner)
        elif n % 3 == 2:
            revoke(chain, owners[-2][1], f"{owners[-2][0]}.{NAMESPACE}")
        chain.mine(max(1, every - 3))
        n += 1
    chain.mine_to(end)
    return chain
