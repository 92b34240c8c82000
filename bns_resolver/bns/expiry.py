"""The expiry rule in the shape the index's SQL state store takes."""

from __future__ import annotations

from collections.abc import Callable

from bns_resolver.bns.names import resolvable_until
from bns_resolver.bns.networks import NetworkProfile
from bns_resolver.bns.state import Record


def expiry_rule(profile: NetworkProfile) -> Callable[[Record, Record | None], int | None]:
    """First block at which a name stops resolving (None: never), for SqlStateStore."""

    def first_dead_block(name: Record, namespace: Record | None) -> int | None:
        if namespace is None:
            return None
        last_alive = resolvable_until(name, namespace, profile)
        return None if last_alive is None else last_alive + 1

    return first_dead_block
