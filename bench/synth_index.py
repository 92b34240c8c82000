"""A synthetic BNS index with N names, each with its own small verified zone file.

Built once directly in SQLite through the package's own schema (open_index runs
the migrations), then reused from bench/out/ (git-ignored). The same names are
written as Unbound `local-data:` lines so both servers hold identical data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import insert

from bns_resolver.hashing import hash160_hex
from bns_resolver.index import schema
from bns_resolver.index.db import HEAD_REVISION, open_index
from bns_resolver.index.sync_state import write_sync_state

NAMESPACE = "synth"
RECORD_TTL = 3600
GENERATOR_VERSION = 1
BATCH = 20000


def name_of(i: int) -> str:
    return f"n{i:07d}.{NAMESPACE}"


def uri_target(i: int) -> str:
    return f"https://gaia.example.org/hub/{i:07d}/profile.json"


def zonefile_for(i: int) -> bytes:
    fqn = name_of(i)
    return (f"$ORIGIN {fqn}\n$TTL {RECORD_TTL}\n"
            f'_http._tcp\tIN\tURI\t10\t1\t"{uri_target(i)}"\n').encode()


def query_name(i: int) -> str:
    """The name that carries the URI record of synthetic name i."""
    return f"_http._tcp.{name_of(i)}"


def unbound_local_data(count: int) -> Iterator[str]:
    """The same records as Unbound config lines."""
    for i in range(count):
        yield f"local-data: '{query_name(i)}. {RECORD_TTL} IN URI 10 1 \"{uri_target(i)}\"'\n"


def _namespace_row() -> dict[str, object]:
    return {
        "namespace_id": NAMESPACE, "version": 1, "lifetime": 0, "coeff": 250, "base": 4,
        "buckets": ",".join(["1"] * 16), "nonalpha_discount": 1, "no_vowel_discount": 1,
        "address": None, "ready": True, "reveal_block": None, "ready_block": None,
    }


def build_index(data_dir: Path, count: int) -> float:
    """Create data_dir/index.sqlite with `count` names; returns seconds taken."""
    started = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "index.sqlite"
    for leftover in data_dir.glob("index.sqlite*"):
        leftover.unlink()
    engine = open_index(f"sqlite:///{db_path}")
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(schema.namespaces), [_namespace_row()])
        for start in range(0, count, BATCH):
            names, zonefiles = [], []
            for i in range(start, min(start + BATCH, count)):
                content = zonefile_for(i)
                value_hash = hash160_hex(content)
                names.append({"fqn": name_of(i), "namespace_id": NAMESPACE, "owner_address": "SP000BENCH",
                              "value_hash": value_hash, "revoked": False, "expire_block": None})
                zonefiles.append({"zonefile_hash": value_hash, "content": content,
                                  "source": "bench:synthetic", "fetched_at": now})
            conn.execute(insert(schema.names), names)
            conn.execute(insert(schema.zonefiles), zonefiles)
        write_sync_state(conn, {"source": "snapshot", "height": "665750", "generation": "1"})
    engine.dispose()
    return time.monotonic() - started


def ensure_index(out_dir: Path, count: int) -> tuple[Path, str]:
    """The cached synthetic data dir for `count` names, building it if needed."""
    data_dir = out_dir / f"index-{count}"
    marker = data_dir / "bench-index.json"
    # Rebuilt when the schema moves on, so a start-up never includes a migration.
    wanted = {"count": count, "namespace": NAMESPACE, "version": GENERATOR_VERSION, "schema": HEAD_REVISION}
    if marker.exists() and (data_dir / "index.sqlite").exists():
        if json.loads(marker.read_text()) == wanted:
            return data_dir, "cached"
    seconds = build_index(data_dir, count)
    marker.write_text(json.dumps(wanted))
    return data_dir, f"built in {seconds:.1f} s"
