"""Reading one TOML table of the settings: each known key parsed, anything left over refused.

Shared by the settings types (the [chain] network-profile overrides are read when a ChainSettings
is built in code too) and by the file reader (config_file.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from bns_resolver import config_values as v
from bns_resolver.errors import ConfigError

T = TypeVar("T")


def checked(where: str, parse: Callable[[Any], T], value: Any) -> T:
    """`parse(value)`, with a failure turned into a one-line ConfigError saying where the value came from."""
    try:
        return parse(value)
    except v.Invalid as exc:
        raise ConfigError(f"{where}: {exc}") from None


class Missing:
    """A key the table does not have (None may be a real value)."""


MISSING: Any = Missing()


class Table:
    """One TOML table being read: known keys are taken and parsed, anything left over is refused."""

    def __init__(self, raw: Any, where: str, name: str = "") -> None:
        self.where, self.name = where, name
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: {self.key('')}: must be a table, got {v.kind(raw)} {raw!r}")
        self.raw: dict[str, Any] = dict(raw)
        self.known: list[str] = []

    def key(self, key: str) -> str:
        return f"[{self.name}] {key}".strip() if self.name else key

    def take(self, key: str, parse: Callable[[Any], T]) -> T:
        self.known.append(key)
        if key not in self.raw:
            return MISSING  # type: ignore[no-any-return,unused-ignore]  # strict mode only
        return checked(f"{self.where}: {self.key(key)}", parse, self.raw.pop(key))

    def table(self, key: str) -> Table:
        self.known.append(key)
        return Table(self.raw.pop(key, {}), self.where, key if not self.name else f"{self.name}.{key}")

    def refuse_unknown(self) -> None:
        for key in self.raw:
            near = difflib.get_close_matches(key, self.known, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(self.known)}"
            raise ConfigError(f"{self.where}: {self.key(key)}: unknown key ({hint})")


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The values a table set: those `Table.take` found, without the MISSING ones."""
    return {key: value for key, value in values.items() if value is not MISSING}
