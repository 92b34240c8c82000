"""Helper processes that feed a parent through a bounded multiprocessing queue (the compile's
producers, the import's reader): the parts both get right the same way.

A helper must never outlive its parent (killed or not): a daemon thread watches the parent's
pid. It ignores Ctrl-C, which the terminal sends to the whole process group: the parent ends it.
The parent reads with `receive`, which tells a finished helper from a dead one without racing
the helper's last messages.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
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


def send(channel: Any, message: object) -> None:
    """Put `message`, waiting while the queue is full (the parent is busy writing)."""
    while True:
        try:
            channel.put(message, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue


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
