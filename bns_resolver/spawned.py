"""Helper processes that feed a parent through a bounded multiprocessing queue (the compile's
producers, the import's reader): the parts both get right the same way.

A helper must never outlive its parent (killed or not): a daemon thread watches the parent's
pid. It ignores Ctrl-C, which the terminal sends to the whole process group: the parent ends it.
The parent reads with `receive`, which tells a finished helper from a dead one without racing
the helper's last messages.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from typing import Any

POLL_SECONDS = 1.0


def become_helper(parent: int) -> None:
    """Call first in a helper process: Ctrl-C is the parent's to handle; exit when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # nobody reads what this process would send


def start(target: Callable[..., None], argument_sets: list[tuple[Any, ...]], names: list[str],
          queued: int) -> tuple[Any, list[BaseProcess]]:
    """Spawn one helper per argument set, each called as target(*arguments, channel, parent pid);
    returns the bounded queue they all send on, and the helpers."""
    context = multiprocessing.get_context("spawn")  # no inherited connections, threads or reactor
    channel = context.Queue(maxsize=queued)
    helpers: list[BaseProcess] = [
        context.Process(target=target, name=name, daemon=True, args=(*arguments, channel, os.getpid()))
        for arguments, name in zip(argument_sets, names, strict=True)]
    for helper in helpers:
        helper.start()
    return channel, helpers


def send(channel: Any, message: object) -> None:
    """Put `message`, waiting while the queue is full (the parent is busy writing; if it died, the
    watchdog of become_helper ends this process)."""
    channel.put(message)


def receive(channel: Any, helpers: list[BaseProcess], finished: set[int]) -> Iterator[Any]:
    """Messages from `helpers` until each in `finished`'s sense is done (the caller adds their
    numbers); raises HelperDied when one exits without finishing. A helper seen dead gets one more
    poll first: a helper flushes its queue before exiting, so its last messages may still be on
    the way when its exit is seen."""
    seen_dead: set[int] = set()
    while len(finished) < len(helpers):
        try:
            yield channel.get(timeout=POLL_SECONDS)
            continue
        except queue.Empty:
            pass
        for number, helper in enumerate(helpers):
            if number in finished or helper.is_alive():
                continue
            if number in seen_dead:
                raise HelperDied(number, helper.exitcode)
            seen_dead.add(number)


def stop(helpers: list[BaseProcess], channel: Any) -> None:
    """End every helper still running and release the queue."""
    for helper in helpers:
        if helper.is_alive():
            helper.terminate()
        helper.join()
    channel.close()


class HelperDied(Exception):
    def __init__(self, number: int, exitcode: int | None) -> None:
        super().__init__(f"helper process {number} exited (code {exitcode}) before it finished")
        self.number, self.exitcode = number, exitcode
