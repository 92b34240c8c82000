"""STX token accounts as blockstack-core v22 kept them (epoch 4+ of BNS v1), and TOKEN_TRANSFER.

Follows `lib/nameset/db.py` and `namedb.py` of v22:

* genesis (`namedb_create_token_genesis`): every row of the final genesis stage opens an account
  at the first block with `value` liquid, its `lock_send` and `receive_whitelisted`, and its
  vesting schedule in the vesting table;
* after each block h (`db_save`): first the genesis patch for h+1 (`commit_genesis_patch`:
  `namedb_merge_account_at` adds the row's value plus every unlock of its schedule below h+1
  at once, merges the rest into the vesting table, keeps the greater lock, takes the row's
  whitelist flag; `namedb_remove_account` drops the deleted unspendable labels), then the
  vesting of h+1 (`namedb_accounts_vest`) -- so both are usable in block h+1;
* the 2020 airdrop (`GENESIS_BLOCK_PATCHES_FILES`) is such a patch per batch: 100 STX,
  locked until 665845, to each address of the batch;
* payments (`namedb_account_debit`) need an account with enough balance and ignore the send
  lock (NAME_PREORDER, NAME_RENEWAL, NAMESPACE_PREORDER); TOKEN_TRANSFER (`tokentransfer.check`)
  also needs `height >= lock_transfer_block_id` and, if the recipient has an account, its
  `receive_whitelisted`; a credit opens a new account unlocked and whitelisted.

The ledger is plain in-memory state: the engine decides when ops debit or credit it.  The
airdrop list ships as hash160 prefixes (see `genesis.py`), so airdrop accounts are opened the
first time an address is looked up at or after its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bns_resolver.bns import ops
from bns_resolver.bns.genesis import GenesisAllocation, GenesisRow, load_genesis
from bns_resolver.bns.networks import mainnet


@dataclass
class Account:
    credit: int
    debit: int = 0
    lock_send: int = 0
    receive_whitelisted: bool = True
    metadata: str = ""

    @property
    def balance(self) -> int:
        return self.credit - self.debit


class LedgerError(ValueError):
    """A debit the reference would have aborted on (the engine must check before it commits)."""


@dataclass
class TokenLedger:
    genesis: GenesisAllocation
    first_block: int
    accounts: dict[str, Account] = field(default_factory=dict)
    vesting: dict[int, dict[str, int]] = field(default_factory=dict)  # height -> address -> µSTX
    next_block: int = 0  # the block whose ops the ledger is ready for
    _airdrop_seen: set[str] = field(default_factory=set)  # addresses whose airdrop status is settled
    _airdrop_opened: int = 0  # µSTX of airdrop grants already in `accounts`

    @classmethod
    def at_genesis(cls, genesis: GenesisAllocation, first_block: int) -> TokenLedger:
        ledger = cls(genesis, first_block, next_block=first_block)
        for row in genesis.rows:
            ledger.accounts[row.address] = Account(row.value, 0, row.lock_send, row.receive_whitelisted, row.metadata)
            for height, amount in row.vesting:
                ledger.vesting.setdefault(height, {})[row.address] = amount
        return ledger

    # -- per block ----------------------------------------------------------------------
    def end_block(self, height: int) -> None:
        """What v22's db_save does after block `height`: patch, then vest, for height+1."""
        if height != self.next_block:
            raise ValueError(f"ledger is at block {self.next_block}, not {height}")
        upcoming = height + 1
        patch = self.genesis.patches.get(upcoming)
        if patch is not None:
            for row in patch.add:
                self._merge(row, upcoming)
            for label in patch.delete:
                self.accounts.pop(label, None)
                for by_address in self.vesting.values():
                    by_address.pop(label, None)
        for address, amount in self.vesting.get(upcoming, {}).items():
            self.credit(address, amount)
        self.next_block = upcoming

    def advance_to(self, height: int) -> None:
        """End every block before `height` (events only happen at patch and vesting heights)."""
        while True:  # a patch can add unlock heights, so look for the next event each time
            events = [h for h in set(self.vesting) | set(self.genesis.patches) if self.next_block < h <= height]
            if not events:
                break
            self.next_block = min(events) - 1
            self.end_block(self.next_block)
        self.next_block = max(self.next_block, height)

    def _merge(self, row: GenesisRow, merge_height: int) -> None:
        """namedb_merge_account_at: value + unlocks below the merge height now, the rest later."""
        vested_now = sum(amount for h, amount in row.vesting if h < merge_height)
        account = self.accounts.get(row.address)
        if account is None:
            account = self.accounts[row.address] = Account(0)
        account.credit += row.value + vested_now
        account.lock_send = max(account.lock_send, row.lock_send)
        account.receive_whitelisted = row.receive_whitelisted
        account.metadata = row.metadata
        for h, amount in row.vesting:
            if h >= merge_height:
                by_address = self.vesting.setdefault(h, {})
                by_address[row.address] = by_address.get(row.address, 0) + amount

    # -- accounts ------------------------------------------------------------------------
    def account(self, address: str) -> Account | None:
        self._open_airdrop(address)
        return self.accounts.get(address)

    def _open_airdrop(self, address: str) -> None:
        if address in self._airdrop_seen:
            return
        batch_height = self.genesis.airdrop_batch_height(address)
        if batch_height is None:
            self._airdrop_seen.add(address)
            return
        if self.next_block < batch_height:
            return  # not granted yet; look again later
        batch = self.genesis.airdrop_batches[batch_height]
        self._merge(GenesisRow(address, batch.value, batch.lock_send, batch.receive_whitelisted,
                               batch.metadata, ()), batch_height)
        self._airdrop_seen.add(address)
        self._airdrop_opened += batch.value

    def balance(self, address: str) -> int | None:
        account = self.account(address)
        return None if account is None else account.balance

    def can_pay(self, address: str, amount: int) -> bool:
        """NAME_PREORDER / NAME_RENEWAL / NAMESPACE_PREORDER: an account with the balance (no lock check)."""
        account = self.account(address)
        return account is not None and account.balance >= amount

    def transfer_refusal(self, sender: str, recipient: str, amount: int, height: int) -> str | None:
        """Why tokentransfer.check would reject this TOKEN_TRANSFER (None: it would not)."""
        if amount <= 0:
            return "zero-value transfer"
        if sender == recipient:
            return "transfer to itself"
        account = self.account(sender)
        if account is None:
            return "no sender account"
        if height < account.lock_send:
            return f"sender locked until {account.lock_send}"
        if account.balance < amount:
            return "insufficient balance"
        receiver = self.account(recipient)
        if receiver is not None and not receiver.receive_whitelisted:
            return "recipient not whitelisted"
        return None

    def debit(self, address: str, amount: int) -> None:
        account = self.account(address)
        if account is None or account.balance < amount:
            raise LedgerError(f"{address} cannot pay {amount}")
        account.debit += amount

    def credit(self, address: str, amount: int) -> None:
        account = self.account(address)
        if account is None:
            self.accounts[address] = Account(amount)
        else:
            account.credit += amount

    def transfer(self, sender: str, recipient: str, amount: int) -> None:
        self.debit(sender, amount)
        self.credit(recipient, amount)

    # -- supply --------------------------------------------------------------------------
    def unvested(self) -> int:
        """µSTX still to unlock at or after the next block."""
        return sum(sum(by.values()) for h, by in self.vesting.items() if h > self.next_block)

    def airdropped(self) -> int:
        """µSTX granted by the airdrop batches applied so far (opened lazily or not)."""
        return sum((b.line_end - b.line_start) * b.value
                   for h, b in self.genesis.airdrop_batches.items() if h <= self.next_block)

    def liquid(self) -> int:
        """Unlocked µSTX held by accounts (airdrop grants counted whether opened yet or not)."""
        return sum(a.balance for a in self.accounts.values()) - self._airdrop_opened + self.airdropped()


@dataclass(frozen=True)
class Supply:
    """µSTX at a height, before any op of that block: unlocked (held by accounts) and still vesting."""

    height: int
    liquid: int
    unvested: int


def supply_at(genesis: GenesisAllocation, first_block: int, height: int) -> Supply:
    """What `status` can show: the allocation's supply usable in block `height`, counting grants,
    unlocks and patches only (STX burned by name payments is not subtracted here)."""
    ledger = TokenLedger.at_genesis(genesis, first_block)
    ledger.advance_to(max(height, first_block))
    return Supply(height, ledger.liquid(), ledger.unvested())


# -- TOKEN_TRANSFER (lib/operations/tokentransfer.py) ----------------------------------------------
TOKEN_TRANSFER_FIELDS = ("sender", "address", "recipient", "recipient_address", "token_units", "token_fee",
                         "block_id", "op", "txid", "vtxindex", "consensus_hash", "scratch_area")
ZERO_CONSENSUS_HASH = "00" * 16


class TransferJudge(Protocol):
    def transfer_refusal(self, sender: str, recipient: str, amount: int, height: int) -> str | None: ...


def token_transfer_values(ledger: TransferJudge, op: ops.CandidateOp, height: int,
                          consensus_hash_valid: Callable[[str], bool], zero_ch_allowed: bool) -> tuple | None:
    """The hashed field values of an acceptable TOKEN_TRANSFER (tokentransfer.check), else None.

    `zero_ch_allowed`: epoch 5+ accepts an all-zero consensus hash.  The caller commits the
    transfer with `ledger.transfer(address, recipient_address, amount)`.  token_fee is hashed as
    a decimal string (the reference kept it a string to avoid overflow)."""
    payload, ctx = op.payload, op.ctx
    assert isinstance(payload, ops.TokenTransfer)
    if payload.amount <= 0 or ctx.address == payload.recipient_address:
        return None
    ch = payload.consensus_hash
    if not ((zero_ch_allowed and ch == ZERO_CONSENSUS_HASH) or consensus_hash_valid(ch)):
        return None
    if payload.token_units != "STACKS":  # accounts only exist for STACKS
        return None
    if ledger.transfer_refusal(ctx.address, payload.recipient_address, payload.amount, height) is not None:
        return None
    return (ctx.sender, ctx.address, payload.recipient, payload.recipient_address, payload.token_units,
            str(payload.amount), height, "$", ctx.txid, ctx.vtxindex, ch, payload.scratch_area)


def describe_supply(network: str, height: int | None) -> str | None:
    """`status`'s line: total STX of the genesis allocation usable at `height` on mainnet.

    total = liquid (held by accounts: genesis values, unlocked vesting, patches, airdrop grants)
    + vesting (scheduled unlocks still ahead).  Name-payment burns are not subtracted."""
    if network != "mainnet" or height is None:
        return None
    profile = mainnet()
    supply = supply_at(load_genesis(), profile.first_block, height)
    return (f"{_stx(supply.liquid + supply.unvested)} STX at {height} "
            f"(liquid {_stx(supply.liquid)} + vesting {_stx(supply.unvested)})")


def _stx(micro: int) -> str:
    return f"{micro // 1_000_000:,}.{micro % 1_000_000:06d}"
