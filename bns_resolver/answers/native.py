"""The C answerer of the UDP reader (`_native.c`), when the extension was built.

The extension is optional (setup.py): where it could not be compiled, `udp_answerer` returns
None and the reader asks `StoreAnswerer.answer` for every store answer, with the same bytes.
"""

from __future__ import annotations

from typing import Any

try:
    from bns_resolver.answers import _native  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler or the Python headers
    _native = None

# The plans' kinds (kept equal to _native.c's, which a test checks).
PLAN_BNS_FIRST = 1  # answer the names the store has; a name it lacks goes upstream
PLAN_BNS_ONLY = 2  # answer the names the store has, NXDOMAIN for the rest


def available() -> bool:
    return _native is not None


def udp_answerer(owner: Any, forwarded: Any, web: tuple[int, bytes] | None, replay: Any) -> Any:
    """A native answerer over `owner` (a StoreAnswerer: its `_get`, `plans` and `plan`), declining names
    of `forwarded.namespaces` and remembering its replies in `replay`; None without the extension.
    Its `answer(packet)` gives the reply or None, its `answered` counts the replies."""
    if _native is None:
        return None
    return _native.NativeAnswerer(owner, owner.plans, owner.plan, forwarded, web, replay)
