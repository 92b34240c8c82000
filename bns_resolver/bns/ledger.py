"""The v22 STX ledger kept in the engine's StateStore, block by block.

Same rules as bns/accounts.py's in-memory TokenLedger (which `status` uses for supply), but
every account and every pending unlock is a store record, so the debits, credits, patches and
unlocks of a block commit, roll back and undo with the block (crash safety and reorgs):

* `seed` (first block): `namedb_create_token_genesis` -- one account per genesis row, its
  schedule in the vesting records;
* `end_block(h)` (v22 `db_save`): the genesis patch for h+1 (`commit_genesis_patch`), then the
  vesting of h+1 (`namedb_accounts_vest`), so both are usable in block h+1;
* airdrop batches are merged into an address the first time it is looked up at or after its
  batch (the list ships as hash160 prefixes, so the engine cannot enumerate it): same result
  as the reference's eager merge, because every later change to the account looks it up first.
"""

from __future__ import annotations

from bns_resolver.bns.accounts import Account
from bns_resolver.bns.genesis import GenesisAllocation, GenesisRow
from bns_resolver.bns.state import Record, StateStore


def _to_record(account: Account, airdropped: bool) -> Record:
    return {"credit": account.credit, "debit": account.debit, "lock_send": account.lock_send,
            "receive_whitelisted": account.receive_whitelisted, "metadata": account.metadata,
            "airdropped": airdropped}


def _from_record(record: Record) -> Account:
    return Account(record["credit"], record["debit"], record["lock_send"], record["receive_whitelisted"],
                   record["metadata"])


class StoredLedger:
    def __init__(self, store: StateStore, genesis: GenesisAllocation) -> None:
        self.store = store
        self.genesis = genesis
        # Every height that can ever hold unlocks (genesis rows and patch rows), so a block
        # with none costs no store read.
        rows = list(genesis.rows) + [r for p in genesis.patches.values() for r in p.add]
        self._unlock_heights = {h for r in rows for h, _ in r.vesting}

    # -- per block ----------------------------------------------------------------------
    def seed(self) -> None:
        vesting: dict[int, dict[str, int]] = {}
        for row in self.genesis.rows:
            account = Account(row.value, 0, row.lock_send, row.receive_whitelisted, row.metadata)
            self.store.put_account(row.address, _to_record(account, False))
            for height, amount in row.vesting:
                vesting.setdefault(height, {})[row.address] = amount
        for height, unlocks in vesting.items():
            self.store.put_vesting(height, unlocks)

    def end_block(self, height: int) -> None:
        """After block `height`: the patch of height+1, then its unlocks."""
        upcoming = height + 1
        patch = self.genesis.patches.get(upcoming)
        if patch is not None:
            for row in patch.add:
                self._merge(row, upcoming)
            for label in patch.delete:
                self._remove(label, upcoming)
        if upcoming in self._unlock_heights:
            for address, amount in (self.store.get_vesting(upcoming) or {}).items():
                self.credit(address, amount)

    def _merge(self, row: GenesisRow, merge_height: int, airdrop: bool = False) -> None:
        """namedb_merge_account_at: value + unlocks below the merge height now, the rest later."""
        record = self.store.get_account(row.address)
        account = _from_record(record) if record is not None else Account(0)
        account.credit += row.value + sum(amount for h, amount in row.vesting if h < merge_height)
        account.lock_send = max(account.lock_send, row.lock_send)
        account.receive_whitelisted = row.receive_whitelisted
        account.metadata = row.metadata
        airdropped = airdrop or bool(record and record.get("airdropped"))
        self.store.put_account(row.address, _to_record(account, airdropped))
        for h, amount in row.vesting:
            if h >= merge_height:
                unlocks = self.store.get_vesting(h) or {}
                unlocks[row.address] = unlocks.get(row.address, 0) + amount
                self.store.put_vesting(h, unlocks)

    def _remove(self, label: str, after: int) -> None:
        """namedb_remove_account: the account and its pending unlocks."""
        self.store.put_account(label, None)
        for h in sorted(x for x in self._unlock_heights if x > after):
            unlocks = self.store.get_vesting(h)
            if unlocks is not None and label in unlocks:
                del unlocks[label]
                self.store.put_vesting(h, unlocks)

    # -- accounts ------------------------------------------------------------------------
    def account(self, address: str, height: int) -> Account | None:
        """The account as block `height`'s ops see it (airdrop merged once its batch passed)."""
        record = self.store.get_account(address)
        if record is None or not record.get("airdropped"):
            batch_height = self.genesis.airdrop_batch_height(address)
            if batch_height is not None and batch_height <= height:  # patch B is usable in block B
                batch = self.genesis.airdrop_batches[batch_height]
                self._merge(GenesisRow(address, batch.value, batch.lock_send, batch.receive_whitelisted,
                                       batch.metadata, ()), batch_height, airdrop=True)
                record = self.store.get_account(address)
        return None if record is None else _from_record(record)

    def can_pay(self, address: str, amount: int, height: int) -> bool:
        """Payments (preorders, renewals): an account with the balance; the send lock is not checked."""
        account = self.account(address, height)
        return account is not None and account.balance >= amount

    def transfer_refusal(self, sender: str, recipient: str, amount: int, height: int) -> str | None:
        """Why tokentransfer.check would reject this TOKEN_TRANSFER (None: it would not)."""
        if amount <= 0:
            return "zero-value transfer"
        if sender == recipient:
            return "transfer to itself"
        account = self.account(sender, height)
        if account is None:
            return "no sender account"
        if height < account.lock_send:
            return f"sender locked until {account.lock_send}"
        if account.balance < amount:
            return "insufficient balance"
        receiver = self.account(recipient, height)
        if receiver is not None and not receiver.receive_whitelisted:
            return "recipient not whitelisted"
        return None

    def debit(self, address: str, amount: int) -> None:
        record = self.store.get_account(address)
        if record is None or record["credit"] - record["debit"] < amount:
            raise ValueError(f"{address} cannot pay {amount} µSTX")  # checked before commit
        record["debit"] += amount
        self.store.put_account(address, record)

    def credit(self, address: str, amount: int) -> None:
        record = self.store.get_account(address)
        if record is None:
            record = _to_record(Account(0), False)
        record["credit"] += amount
        self.store.put_account(address, record)
