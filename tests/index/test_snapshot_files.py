"""The export's CSV rows (index/snapshot_files.py): `column_rows` gives what `dict_rows` gives, and
fails where it fails, with the same message."""

from __future__ import annotations

import pytest

from bns_resolver.errors import SnapshotError
from bns_resolver.index.snapshot_files import column_rows, dict_rows

COLUMNS = ("name", "owner", "hash")


def _by_dict(lines: list[str], optional: tuple[str, ...] = ()) -> list[tuple[str | None, ...]]:
    return [tuple(row[c] for c in COLUMNS) + tuple(row.get(c) for c in optional)
            for row in dict_rows(lines, "t.csv", COLUMNS)]


@pytest.mark.parametrize("lines", [
    ["name,owner,hash,resolver", "a.b.id,1A,ff,https://r", "", "c.b.id,1B,ee,"],
    ["resolver,hash,owner,name", "https://r,ff,1A,a.b.id"],  # any column order
    ["name,owner,hash", "a.b.id,1A,ff", "c.b.id,1B,ee,extra,values"],  # no resolver column; a long row
    ["name,owner,hash,resolver", "a.b.id,1A,ff"],  # a short row that still has every required column
    ["name,owner,name,hash", "first,1A,second,ff"],  # a repeated column: its last value, as a dict
    ['name,owner,hash', '"a.b.id","1,A","f""f"'],  # quoting
    ["name,owner,hash"],  # no rows
    [],  # not even a header
])
def test_column_rows_match_dict_rows(lines: list[str]) -> None:
    assert list(column_rows(lines, "t.csv", COLUMNS, ("resolver",))) == _by_dict(lines, ("resolver",))
    assert list(column_rows(lines, "t.csv", COLUMNS)) == _by_dict(lines)


@pytest.mark.parametrize("lines, message", [
    (["name,owner,hash", "a.b.id,1A,ff", "c.b.id,1B"], "t.csv row 2 has no hash"),
    (["name,hash", "a.b.id,ff"], "t.csv row 1 has no owner"),
    (["name,owner,hash", "", "c.b.id"], "t.csv row 2 has no owner, hash"),
])
def test_column_rows_fail_as_dict_rows_do(lines: list[str], message: str) -> None:
    for rows in (column_rows(lines, "t.csv", COLUMNS), dict_rows(lines, "t.csv", COLUMNS)):
        with pytest.raises(SnapshotError) as raised:
            list(rows)
        assert str(raised.value) == message
