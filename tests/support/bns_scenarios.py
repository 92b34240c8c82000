"""Chains of BNS operations the end-to-end tests share (built with bns_ops.py's signed regtest ops)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.bns_ops import (
    BnsChain,
    name_price,
    namespace_preorder,
    namespace_ready,
    namespace_reveal,
    preorder,
    register,
    revoke,
    transfer,
    update,
    zonefile,
    zonefile_hash,
)
from tests.support.chainbuilder import Wallet

# The issue-4 scenario.
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



def launch_namespace(chain: BnsChain, namespace_id: str = NAMESPACE,
                     params: dict | None = None, *, creator_sats: int = 100_000_000) -> tuple[Wallet, Wallet]:
    """Preorder, reveal (`params` over the .id-like defaults) and ready `namespace_id` in three
    consecutive blocks; (creator, revealer)."""
    creator, revealer = chain.wallet("creator", creator_sats), chain.wallet("revealer")
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
