"""The C answerer of the UDP reader (`_native.c`), when the extension was built.

The extension is optional (setup.py): where it could not be compiled, or with
BNS_RESOLVER_NATIVE=0 in the environment (to compare, or to rule it out), `udp_answerer` returns
None and the reader asks `StoreAnswerer.answer` for every store answer, with the same bytes.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

SWITCH = "BNS_RESOLVER_NATIVE"

try:
    from bns_resolver.answers import _native  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler or the Python headers
    _native = None
if os.environ.get(SWITCH, "1") == "0":
    _native = None

# The plans' kinds (kept equal to _native.c's, which a test checks).
PLAN_BNS_FIRST = 1  # answer the names the store has; a name it lacks goes upstream
PLAN_BNS_ONLY = 2  # answer the names the store has, NXDOMAIN for the rest


Handed = list[tuple[bytes, Any, "bytes | None"]]


class NativeUdp(Protocol):
    """What _native.NativeAnswerer offers a UDP reader (typed here: the extension has no stubs)."""

    @property
    def answered(self) -> int: ...

    def answer(self, packet: bytes, /) -> bytes | None:
        """The reply (remembered in the replay table), or None: the Python path decides."""

    def read(self, fd: int, decided: dict[str, bool], buckets: dict[str, Any] | None, now: float, budget: int,
             /) -> tuple[Handed, int]:
        """Read up to `budget` datagrams; send what the replay table and the store answer for allowed,
        unlimited clients; hand back the rest as (data, address, the reply awaiting rate limiting or None),
        with the count of store replies joined."""


def available() -> bool:
    return _native is not None


def udp_answerer(owner: Any, forwarded: Any, web: tuple[int, bytes] | None, replay: Any) -> NativeUdp | None:
    """A native answerer over `owner` (a StoreAnswerer: its `_get`, `plans` and `plan`), declining names
    of `forwarded.namespaces` and remembering its replies in `replay`; None without the extension.
    Its `answer(packet)` gives the reply or None, its `answered` counts the replies."""
    if _native is None:
        return None
    answerer: NativeUdp = _native.NativeAnswerer(owner, owner.plans, owner.plan, forwarded, web, replay)
    return answerer
