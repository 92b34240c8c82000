"""Several names preordered, registered, then updated, transferred and renewed in one block.

The chain is the reference's integration test `name_preorder_register_update_transfer_renew_
interleaving` rebuilt with the chain builder: six names whose labels spell the order of their
three same-block operations (u = update, t = transfer, r = renew), each transfer handing the name
to the wallet that preordered it, which then sends the name's remaining operations.

What the reference does with them (blockstack-core of Sept 2016 and 0.14.1, virtualchain
`StateEngine.process_ops`): the block's ops are checked and committed one at a time in tx order
(`db_check` then `db_commit` per op; the SQLite namedb commits each state transition before the
next op is checked), so every op sees the name as the earlier ops of the same block left it.
The hashed record of a transition is the row read back after the commit
(`BlockstackDB.commit_state_transition` -> `namedb_get_name`) plus the op's derived fields
(`snv_consensus_extras`): a transfer clears `sender_pubkey`, an update and a renewal keep the
record's (`check_renewal` deletes the tx's key before the commit), and a transfer hashes the
consensus hash of the name's last update if there is one (`find_last_transfer_consensus_hash`).
The final names are those the reference test's own `check()` expects.

Sender keys: the SQLite code from before blockstack-core c4abd401e (generation "0.14.0-sqlite-early")
stored the renewing or revoking tx's key; every other generation keeps the record's.  The
reference's own run of this test (0.14 set, 2016-09-01, its register.py debug lines at the line
numbers of 692319b26) stored the renewer's key in all six renewals of the block, including the
three that are their name's first op of the block: the key rule, not the interleaving, decides.

Collisions: before v22 a ':' renewal is first checked by `check_register`, whose
`@state_create(..., "check_name_collision")` wrapper records the name in the block's collision
table (`BlockstackDB.check_collision_state`), so a second ':' on the same name in the same block
is rejected.  v22 extracts renewals as NAME_RENEWAL (>= 4 outputs) and checks them with
`check_renewal` alone, so two renewals of one name in one block both pass.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bns_resolver.bns.names import name_consensus_hash
from bns_resolver.bns.networks import NetworkProfile, from_corpus_config
from tests.support.bns_ops import (
    BnsChain,
    address,
    preorder,
    register,
    regtest_profile,
    renew,
    replay,
    revoke,
    script_hex,
    transfer,
    update,
)
from tests.support.bns_scenarios import launch_namespace
from tests.support.chainbuilder import Wallet

NAMESPACE = "test"
# The reference test's namespace: 250 * 4^bucket, 10x discounts (3-letter names: 6 400 000 sat).
PARAMS = {"lifetime": 52595, "coeff": 250, "base": 4, "buckets": (6, 5, 4, 3, 2, 1) + (0,) * 10,
          "nonalpha_discount": 10, "no_vowel_discount": 10, "version": 1}
ORDERS = ("utr", "urt", "tur", "tru", "rut", "rtu")
EPOCHS_0141 = {"EPOCH_1_END_BLOCK": 436650, "EPOCH_1_NAMESPACE_LIFETIME_MULTIPLIER": 1,
               "EPOCH_2_NAMESPACE_LIFETIME_MULTIPLIER": 2, "EPOCH_1_PRICE_MULTIPLIER": 1.0,
               "EPOCH_2_PRICE_MULTIPLIER": 1.0, "EPOCH_2_FEATURES": ["BLOCKSTACK_MULTISIG"]}


def _profile(rules: str) -> NetworkProfile:
    if rules == "v22":
        return regtest_profile()
    if rules == "0.14.1":
        return from_corpus_config({"first_block": 256, "epochs": EPOCHS_0141}, "0.14.1")
    return from_corpus_config({"first_block": 256, "epochs": {}}, "0.13" if rules == "0.14.0" else "0.14", rules)


RULES = ("0.14.0", "0.14.0-sqlite-early", "0.14.0-sqlite", "0.14.1", "v22")
# Generations whose renewals and revokes keep the record's sender key (all but the early SQLite code).
KEEP_KEY_RULES = tuple(r for r in RULES if r != "0.14.0-sqlite-early")


def _fields(serialized: str) -> list[str]:
    """The values of a serialized op (`op:len:value,len:value,...`)."""
    body, out = serialized[2:], []  # after "<opchar>:"
    while body:
        length, rest = body.split(":", 1)
        out.append(rest[: int(length)])
        body = rest[int(length) + 1:]
    return out


NAMEREC = ("name", "value_hash", "sender", "sender_pubkey", "address", "block_number", "preorder_block_number",
           "first_registered", "last_renewed", "revoked", "op", "txid", "vtxindex", "op_fee")


def _record(serialized: str) -> dict[str, str]:
    return dict(zip(NAMEREC, _fields(serialized)))


def _launch(chain: BnsChain) -> None:
    launch_namespace(chain, NAMESPACE, PARAMS, creator_sats=2 * 10**9)


def _interleaving(rules: str, *, update_back: int = 0,
                  transfer_back: int = 0) -> tuple[BnsChain, dict[str, list[Wallet]], dict[str, str]]:
    """Preorder and register the six names, then send all 18 ops in one block.
    Updates and transfers quote the consensus hash of the block `*_back` blocks before the newest
    (0: the newest, as the reference test's wallets did).
    Returns the chain, each name's [owner, other] wallets after the block, and the txid -> name."""
    chain = BnsChain(profile=_profile(rules))
    _launch(chain)
    pairs = {f"{o}.{NAMESPACE}": [chain.wallet(f"{o}-owner"), chain.wallet(f"{o}-buyer")] for o in ORDERS}
    chain.mine()
    for fqn, (owner, buyer) in pairs.items():
        preorder(chain, buyer, fqn, owner)
    chain.mine()
    for fqn, (owner, buyer) in pairs.items():
        register(chain, buyer, fqn, owner)
    chain.mine()
    names: dict[str, str] = {}
    update_ch = chain.consensus_hash(chain.height - update_back)
    transfer_ch = chain.consensus_hash(chain.height - transfer_back)
    for fqn, wallets in pairs.items():
        for i, op in enumerate(fqn.split(".")[0]):
            current, other = wallets
            if op == "u":
                names[update(chain, current, fqn, f"{i}{i}" * 20, consensus_hash=update_ch)] = fqn
            elif op == "r":
                names[renew(chain, current, fqn)] = fqn
            else:
                names[transfer(chain, current, fqn, other, consensus_hash=transfer_ch)] = fqn
                wallets.reverse()
    chain.mine()
    return chain, pairs, names


@pytest.mark.parametrize("rules", RULES)
def test_interleaved_update_transfer_renew_in_one_block(rules: str) -> None:
    """Every op of the block is accepted and sees the earlier ones of its name (the reference
    test's check(): new owners, the last update's value hash)."""
    chain, pairs, names = _interleaving(rules)
    height = chain.height
    accepted = chain.outcomes[height].accepted
    assert len(accepted) == 18
    assert all(names[a.txid] == a.fqn for a in accepted)
    expected_value = {"utr": "00", "urt": "00", "tur": "11", "tru": "22", "rut": "11", "rtu": "22"}
    for fqn, (owner, _) in pairs.items():
        record = chain.store.get_name(fqn)
        assert record["sender"] == script_hex(owner) and record["address"] == address(owner, chain.profile)
        assert record["value_hash"] == expected_value[fqn.split(".")[0]] * 20
        assert record["last_renewed"] == height


@pytest.mark.parametrize("rules", KEEP_KEY_RULES)
def test_interleaved_ops_hash_the_record_each_op_left(rules: str) -> None:
    """Hashed fields of an op that follows others on its name: the transfer's cleared key stays
    cleared through later updates/renewals, a renewal before any transfer keeps the registration's
    key, ops after the renewal carry its last_renewed, and op_fee stays the preorder's."""
    chain, _, _ = _interleaving(rules)
    height = chain.height
    registered = {a.fqn: _record(a.serialized) for a in chain.outcomes[height - 1].accepted}
    by_name: dict[str, list[dict[str, str]]] = {}
    for a in chain.outcomes[height].accepted:
        by_name.setdefault(a.fqn, []).append(_record(a.serialized))
    for fqn, records in by_name.items():
        order = fqn.split(".")[0]
        transferred = renewed = False
        for op, record in zip(order, records):
            transferred |= op == "t"
            renewed |= op == "r"
            expected_key = "" if transferred else registered[fqn]["sender_pubkey"]
            assert record["sender_pubkey"] == expected_key, (fqn, op)
            assert record["last_renewed"] == str(height if renewed else height - 1), (fqn, op)
            assert record["op_fee"] == registered[fqn]["op_fee"], (fqn, op)
            assert record["op"] == {"u": "+", "t": ">>", "r": "::"}[op]


@pytest.mark.parametrize("rules", RULES)
def test_interleaved_ops_quoting_different_consensus_hashes(rules: str) -> None:
    """The same 18 ops, but each update quotes CH(h-3) and each transfer CH(h-1), so the hashed
    consensus hashes tell the rules apart (with one shared hash, as in the reference test, they
    cannot).  Reference: blockstack-core of Sept 2016 (commit 9cd931dcf, the SQLite namedb) and
    0.14.x `operations/transfer.py`: `check` stores `find_last_transfer_consensus_hash(name_rec,
    ...)` (the record's consensus_hash once any non-transfer state follows the creation, i.e. the
    consensus hash of the name's last update, since a registration clears it and transfers keep
    it) and `snv_consensus_extras` hashes that value, or the transfer's own consensus hash (its
    `transfer_send_block_id`) when there is none; `update.py` `check` stores the consensus hash it
    matched and `snv_consensus_extras` hashes hash128(name + that).  The records are read back after
    each commit (`commit_state_transition`), so an update earlier in the same block counts."""
    chain, _, _ = _interleaving(rules, update_back=2, transfer_back=0)
    height = chain.height
    update_ch, transfer_ch = chain.consensus_hash(height - 3), chain.consensus_hash(height - 1)
    assert update_ch != transfer_ch
    seen: dict[str, str] = {}
    for a in chain.outcomes[height].accepted:
        assert a.fqn is not None
        order, fields = a.fqn.split(".")[0], _fields(a.serialized)
        seen[a.fqn] = seen.get(a.fqn, "") + {"+": "u", ">": "t", ":": "r"}[a.opchar]
        if a.opchar == "+":
            assert fields[-2:] == [name_consensus_hash(a.fqn, update_ch), update_ch], a.fqn
        elif a.opchar == ">":
            updated_before = order.index("u") < order.index("t")
            assert fields[-2] == (update_ch if updated_before else transfer_ch), a.fqn
    assert seen == {fqn: fqn.split(".")[0] for fqn in seen} and len(seen) == 6


def _registered_abc(rules: str) -> tuple[BnsChain, Wallet, Wallet, str]:
    """A chain where `buyer`'s transactions registered abc.<namespace> to `owner`."""
    chain = BnsChain(profile=_profile(rules))
    _launch(chain)
    owner, buyer = chain.wallet("owner"), chain.wallet("buyer")
    fqn = f"abc.{NAMESPACE}"
    chain.mine()
    preorder(chain, buyer, fqn, owner)
    chain.mine()
    register(chain, buyer, fqn, owner)
    chain.mine()
    return chain, owner, buyer, fqn


def _double_renewal(rules: str) -> tuple[BnsChain, str, str]:
    chain, owner, _buyer, fqn = _registered_abc(rules)
    first, second = renew(chain, owner, fqn), renew(chain, owner, fqn)
    chain.mine()
    return chain, first, second


@pytest.mark.parametrize(("rules", "kept"), [
    ("0.14.0", ()),                 # flat file: the prescan rejects both (log_prescan_find_collisions)
    ("0.14.0-sqlite-early", ("first",)),
    ("0.14.0-sqlite", ("first",)),  # check_register records the name; the second ':' collides
    ("0.14.1", ("first",)),
    ("v22", ("first", "second")),   # check_renewal alone: no collision check
])
def test_two_renewals_of_one_name_in_one_block(rules: str, kept: tuple[str, ...]) -> None:
    chain, first, second = _double_renewal(rules)
    txids = [a.txid for a in chain.outcomes[chain.height].accepted]
    assert txids == [{"first": first, "second": second}[k] for k in kept]


def test_renewal_collision_is_per_name() -> None:
    """Renewals of two different names in one block do not collide."""
    chain = BnsChain(profile=_profile("0.14.1"))
    _launch(chain)
    wallets = {f"{x}.{NAMESPACE}": chain.wallet(x) for x in ("abc", "abd")}
    chain.mine()
    for fqn, w in wallets.items():
        preorder(chain, w, fqn)
    chain.mine()
    for fqn, w in wallets.items():
        register(chain, w, fqn)
    chain.mine()
    for fqn, w in wallets.items():
        renew(chain, w, fqn)
    chain.mine()
    assert sorted(a.fqn for a in chain.outcomes[chain.height].accepted) == sorted(wallets)


def test_renewals_collide_only_before_v22() -> None:
    assert [_profile(r).generation.renewals_collide for r in RULES] == [False, True, True, True, False]
    assert not replace(_profile("0.14.1"), rules="v22").generation.renewals_collide


def test_early_sqlite_renewals_store_the_renewing_tx_key() -> None:
    """0.14.0-sqlite-early: blockstack-core register.py before c4abd401e (692319b26 .. fefce0537)
    lists 'sender_pubkey' in RENEWAL_MUTATE_FIELDS and `check_renewal` leaves tx_extract's key in
    the op, so `namedb_state_transition` writes the renewing tx's key into the row that
    `commit_state_transition` reads back and hashes.  A transfer still clears the key (transfer.py
    `check`: sender_pubkey = None) and an update keeps the row's (update.py `check`:
    name_rec['sender_pubkey']), so the updates after a renewal carry the renewer's key."""
    chain, pairs, _ = _interleaving("0.14.0-sqlite-early")
    height = chain.height
    registered = {a.fqn: _record(a.serialized) for a in chain.outcomes[height - 1].accepted}
    by_name: dict[str, list[dict[str, str]]] = {}
    for a in chain.outcomes[height].accepted:
        by_name.setdefault(str(a.fqn), []).append(_record(a.serialized))
    differs = 0
    for fqn, records in by_name.items():
        # Each name is transferred once, so the wallets swapped once: [1] owned it before the block.
        owner, buyer = pairs[fqn][1], pairs[fqn][0]
        key = registered[fqn]["sender_pubkey"]
        for op, record in zip(fqn.split(".")[0], records):
            if op == "t":
                key, owner = "", buyer
            elif op == "r":
                key = owner.pubkey.hex()
                differs += key != registered[fqn]["sender_pubkey"]
            assert record["sender_pubkey"] == key, (fqn, op)
    assert differs == 3  # rut, urt, rtu: renewed by the owner, registered by the buyer's tx


@pytest.mark.parametrize(("rules", "stored"), [("0.14.0-sqlite-early", "revoker"), ("0.14.0-sqlite", "registrant")])
def test_revoke_stores_the_tx_key_only_in_the_early_sqlite_code(rules: str, stored: str) -> None:
    """revoke.py before c4abd401e: MUTATE_FIELDS lists 'sender_pubkey' and tx_extract sets it from
    the revoking tx; from c4abd401e on neither does, so the row keeps the registrant's key."""
    chain, owner, buyer, fqn = _registered_abc(rules)
    revoke(chain, owner, fqn)
    chain.mine()
    (revoked,) = chain.outcomes[chain.height].accepted
    assert revoked.opchar == "~"
    assert _record(revoked.serialized)["sender_pubkey"] == (owner if stored == "revoker" else buyer).pubkey.hex()


def test_the_two_0140_sqlite_generations_hash_the_interleaving_block_differently() -> None:
    """Same chain, same 18 accepted ops, but a different ops hash: the renewals (and the ops after
    them on their name) hash another sender key, so a recording of this block shows which of the
    two rule sets produced it (bns/networks.py `corpus_generations`).  Earlier blocks agree."""
    early = _interleaving("0.14.0-sqlite-early")[0]
    height = early.height
    _, outcomes = replay(early.blocks, _profile("0.14.0-sqlite"))
    merged = {o.height: o for o in outcomes}
    assert all(early.outcomes[h].consensus_hash == merged[h].consensus_hash for h in range(256, height))
    early_ops, merged_ops = early.outcomes[height].accepted, merged[height].accepted
    assert [a.txid for a in early_ops] == [a.txid for a in merged_ops] and len(early_ops) == 18
    assert early.outcomes[height].ops_hash != merged[height].ops_hash
    differing = {a.txid for a, b in zip(early_ops, merged_ops) if a.serialized != b.serialized}
    for a, b in zip(early_ops, merged_ops):
        if a.txid in differing:
            ra, rb = _record(a.serialized), _record(b.serialized)
            assert {k for k in ra if ra[k] != rb[k]} == {"sender_pubkey"}, a.fqn
    # Every renewal differs (the renewer's key is neither the registrant's nor a transfer's empty
    # one), and so does an update that follows a renewal of its name with no transfer between;
    # nothing else does.
    renewed: set[str | None] = set()
    for a in early_ops:
        assert (a.txid in differing) == (a.opchar == ":" or (a.opchar == "+" and a.fqn in renewed)), a.fqn
        if a.opchar == ":":
            renewed.add(a.fqn)
        elif a.opchar == ">":
            renewed.discard(a.fqn)
    assert sum(a.opchar == ":" for a in early_ops) == 6
