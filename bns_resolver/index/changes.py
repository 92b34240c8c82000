"""The change feed between the index and everything that serves it.

Every writer that changes what DNS serves (chain sync, the zone-file store, the subdomain
indexer, a snapshot import) calls `record_changes` inside its own transaction: the names it
touched land in `index_changes` under the next sequence number, and commit (or vanish) with
the data. A reader remembers the last number it applied and asks for `seq > last`: one
indexed query, the same on SQLite and PostgreSQL, so any number of `serve` processes on one
database can follow it. `IndexEvents` is that reader for a running server: it publishes
height, tip, readiness and the changed names to its subscribers.

Sequence numbers follow commit order: writers take them under a table lock on PostgreSQL
(where two transactions could otherwise commit out of order and a reader would skip one),
and SQLite lets one writer at a time anyway. The log is trimmed to the last `KEEP_SEQS`
numbers; a reader further behind than that learns it (`ChangeSet.complete` is False) and
starts over from the whole index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select

from bns_resolver.index import schema
from bns_resolver.index.sync_state import read_sync_state, write_sync_state

log = logging.getLogger(__name__)

ALL_NAMES = "*"  # everything may have changed (an import): readers start over
STATE_ONLY = ""  # only the sync state moved (a block without name changes, a new tip)
KEEP_SEQS = 10_000  # about two months of blocks; a reader further behind recompiles
TRIM_EVERY = 100  # trim once per this many commits, not on each
_CHUNK = 500  # stay under SQLite's bound-parameter limit
_table = schema.index_changes
_NOTED = "bns_changes_noted"  # conn.info: (transaction, its seq, names logged under it)


@dataclass(frozen=True)
class ChangeSet:
    """What changed after `since`, up to and including `seq`."""

    since: int
    seq: int
    names: frozenset[str]
    complete: bool  # False: the names do not say everything (an import, or a trimmed log)


def record_changes(conn: Connection, names: Iterable[str]) -> int:
    """Log `names` (none: only the sync state moved) in the caller's transaction; returns its seq.

    A transaction takes one number however many times it calls this (the subdomain indexer logs
    row by row): the log then holds one entry per commit."""
    transaction = conn.get_transaction()
    noted = conn.info.get(_NOTED)
    if noted is None or noted[0] is not transaction:
        noted = (transaction, _next_seq(conn), set[str]())
        conn.info[_NOTED] = noted
    _, seq, logged = noted
    rows = sorted({name[:160] for name in names} - logged) or ([] if logged else [STATE_ONLY])
    for start in range(0, len(rows), _CHUNK):
        conn.execute(insert(_table), [{"seq": seq, "name": name} for name in rows[start:start + _CHUNK]])
    logged.update(rows)
    return int(seq)


def _next_seq(conn: Connection) -> int:
    if conn.dialect.name == "postgresql":
        # Held to COMMIT: the next writer takes its number only after ours is visible.
        conn.exec_driver_sql("LOCK TABLE index_changes IN EXCLUSIVE MODE")
    seq = latest_seq(conn) + 1
    if seq % TRIM_EVERY == 0:
        conn.execute(delete(_table).where(_table.c.seq <= seq - KEEP_SEQS))
    return seq


def latest_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.max(_table.c.seq))).scalar() or 0)


def changes_since(conn: Connection, since: int, *, until: int | None = None) -> ChangeSet | None:
    """The names changed after `since` (up to `until`), or None when nothing was logged since."""
    query = select(_table.c.seq, _table.c.name).where(_table.c.seq > since)
    if until is not None:
        query = query.where(_table.c.seq <= until)
    rows = conn.execute(query).all()
    if not rows:
        return None  # the common case, once per poll: one indexed range query that found nothing
    names = frozenset(name for _, name in rows if name != STATE_ONLY)
    oldest = min(seq for seq, _ in rows)
    # Numbers are dense (taken under the lock, only committed ones exist): a gap before the
    # first one we got means the log was trimmed past us.
    complete = ALL_NAMES not in names and oldest == since + 1
    return ChangeSet(since, max(seq for seq, _ in rows), names - {ALL_NAMES}, complete)


def save_state_noted(engine: Engine, values: dict[str, str]) -> None:
    """Write sync-state keys (e.g. the node's tip) and, if any value changed, log a state-only change,
    so servers following the index learn it without asking bitcoind themselves."""
    with engine.begin() as conn:
        current = read_sync_state(conn)
        if all(current.get(key) == value for key, value in values.items()):
            return
        write_sync_state(conn, values)
        record_changes(conn, ())


def names_expiring_between(conn: Connection, low: int | None, high: int | None) -> set[str]:
    """Names whose expiry block lies in (low, high]: the height moving across it (either way)
    changes whether they resolve, though no row changed."""
    if low is None or high is None or low == high:
        return set()
    low, high = min(low, high), max(low, high)
    names = schema.names
    query = select(names.c.fqn).where(names.c.expire_block > low, names.c.expire_block <= high)
    return {row[0] for row in conn.execute(query)}


@dataclass(frozen=True)
class IndexUpdate:
    """One published step of the index, as a server sees it."""

    changes: ChangeSet
    height: int | None
    previous_height: int | None
    tip: int | None
    not_ready: str | None  # why names cannot be vouched for now, or None


Subscriber = Callable[[IndexUpdate], None]


class IndexEvents:
    """The index's one feed to a server: poll() reads the change log (cheaply, `seq > last`) and
    tells every subscriber what moved; `set_not_ready` publishes the sync's readiness.

    Plain and synchronous: the server decides when to poll (a timer, and the sync thread's
    nudge after each block)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            self.seq = latest_seq(conn)
            state = read_sync_state(conn)
        self.height = _int(state.get("height"))
        self.tip = _int(state.get("tip"))
        self.not_ready: str | None = None
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def poll(self) -> IndexUpdate | None:
        """Publish what was committed since the last poll; None when nothing was."""
        with self.engine.connect() as conn:
            changes = changes_since(conn, self.seq)
            if changes is None:
                return None
            state = read_sync_state(conn)
        update = IndexUpdate(changes, _int(state.get("height")), self.height, _int(state.get("tip")), self.not_ready)
        self._publish(update)  # first: a subscriber that fails (the database went away) hears it again
        self.seq, self.height, self.tip = changes.seq, update.height, update.tip
        return update

    def set_not_ready(self, reason: str | None) -> None:
        """The sync's verdict (None: caught up); subscribers hear of a change."""
        if reason == self.not_ready:
            return
        self.not_ready = reason
        nothing = ChangeSet(self.seq, self.seq, frozenset(), complete=True)
        self._publish(IndexUpdate(nothing, self.height, self.height, self.tip, reason))

    def _publish(self, update: IndexUpdate) -> None:
        for subscriber in self._subscribers:
            subscriber(update)


def _int(value: str | None) -> int | None:
    return int(value) if value else None


__all__ = ["ALL_NAMES", "ChangeSet", "IndexEvents", "IndexUpdate", "changes_since", "latest_seq",
           "names_expiring_between", "record_changes", "save_state_noted"]
