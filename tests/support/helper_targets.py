"""Targets for helper processes in tests of bns_resolver/spawned.py (importable by a spawned child)."""

from __future__ import annotations

from typing import Any

from bns_resolver import spawned


def flood(channel: Any, parent: int) -> None:
    """A helper that sends for ever: it only stops when its parent is gone."""
    spawned.become_helper(parent)
    while True:
        spawned.send(channel, b"x" * 1024)


def orphan_parent() -> None:
    """A parent that starts `flood`, says its pid, and never reads (run as a script; the test kills it)."""
    import multiprocessing
    import os
    import sys
    import time

    context = multiprocessing.get_context("spawn")
    channel = context.Queue(maxsize=1)
    helper = context.Process(target=flood, args=(channel, os.getpid()), daemon=True)
    helper.start()
    sys.stdout.write(f"{helper.pid}\n")
    sys.stdout.flush()
    time.sleep(600)


def exited_helper(code: int) -> tuple[Any, Any]:
    """(an empty queue, a spawned process that has already exited with `code` without sending)."""
    import multiprocessing
    import sys

    context = multiprocessing.get_context("spawn")
    helper = context.Process(target=sys.exit, args=(code,))
    helper.start()
    helper.join()
    return context.Queue(), helper
