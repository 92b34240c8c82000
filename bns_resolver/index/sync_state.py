"""The sync_state key/value rows: what the index holds and where it came from."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, insert, select

from bns_resolver.index import schema
from bns_resolver.index.db import reported


def write_sync_state(conn: Connection, values: dict[str, str]) -> None:
    """Set keys inside the caller's transaction, so state commits with the data."""
    if not values:
        return
    conn.execute(delete(schema.sync_state).where(schema.sync_state.c.key.in_(list(values))))
    conn.execute(insert(schema.sync_state), [{"key": k, "value": v} for k, v in values.items()])


def read_sync_state(conn: Connection) -> dict[str, str]:
    rows = conn.execute(select(schema.sync_state.c.key, schema.sync_state.c.value))
    return {key: value for key, value in rows}


def bump_generation(conn: Connection) -> None:
    """Mark the index as changed, so servers reading it drop their cached answers."""
    current = conn.execute(select(schema.sync_state.c.value).where(schema.sync_state.c.key == "generation")).scalar()
    write_sync_state(conn, {"generation": str(int(current or 0) + 1)})


def load_state(engine: Engine) -> dict[str, str]:
    """Every sync_state key, read outside any block transaction."""
    with reported(engine, "read"), engine.connect() as conn:
        return read_sync_state(conn)


def save_state(engine: Engine, values: dict[str, str]) -> None:
    """Set keys in a transaction of their own (e.g. the node's tip, the namespace policy)."""
    with reported(engine, "write to"), engine.begin() as conn:
        write_sync_state(conn, values)


def mark_changed(engine: Engine) -> None:
    """Bump the generation in a transaction of its own, after a writer outside the chain changed rows."""
    with reported(engine, "write to"), engine.begin() as conn:
        bump_generation(conn)
