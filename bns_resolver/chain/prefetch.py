"""Run an iterator on a worker thread, a bounded number of items ahead of its consumer.

Chain sync fetches and decodes blocks (RPC waits, the raw scan) while the engine applies
earlier ones.  The queue is bounded so memory stays at `depth` decoded batches; an
exception in the producer is raised in the consumer at the point where its item would
have been; closing the consumer's iterator stops the producer before its next item.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL = 0.1  # seconds: how often a blocked producer checks whether it was cancelled


class _End:
    """Sentinel: the producer finished (normally, or with `error`)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield `items` in order, produced up to `depth` items ahead on a daemon thread."""
    if depth < 1:
        raise ValueError("prefetch depth must be at least 1")
    slots: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()

    def put(item: T | _End) -> bool:
        while not cancelled.is_set():
            try:
                slots.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_End(exc))
            return
        put(_End(None))

    worker = threading.Thread(target=produce, name="block-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        # The consumer stopped (done, error, or closed early): the producer must not keep
        # using the shared RPC connection behind the caller's back.
        cancelled.set()
        worker.join()
