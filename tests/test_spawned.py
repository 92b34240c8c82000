"""Helper processes (bns_resolver/spawned.py): they die with their parent, however it dies, and a
helper's exit is told apart from its last messages. Real spawned processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bns_resolver import spawned
from tests.support.helper_targets import exited_helper

ROOT = Path(__file__).resolve().parents[1]


def _running(pid: int) -> bool:
    """False once the process has exited (a zombie no parent reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_helper_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", "from tests.support.helper_targets import orphan_parent; "
                               "orphan_parent()"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        helper = int(parent.stdout.readline())
        assert _running(helper)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while _running(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    outlived = _running(helper)
    if outlived:
        os.kill(helper, signal.SIGKILL)  # leave no stray process behind a failure
    assert not outlived, "the helper outlived its killed parent"


def _last_words(channel: object, count: int) -> None:
    for number in range(count):
        channel.put(number)  # type: ignore[attr-defined]


def test_messages_sent_just_before_a_helper_exits_are_all_received() -> None:
    """A helper that sends and exits at once is finished, not dead: its messages arrive."""
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    helper = context.Process(target=_last_words, args=(channel, 3))
    helper.start()
    helper.join()  # exited before the parent read anything
    finished: set[int] = set()
    got = []
    for message in spawned.receive(channel, [helper], finished):
        got.append(message)
        if len(got) == 3:
            finished.add(0)
    assert got == [0, 1, 2]


def test_a_helper_that_exits_without_finishing_is_reported() -> None:
    channel, helper = exited_helper(3)
    with pytest.raises(spawned.HelperDied, match=r"exited \(code 3\)"):
        list(spawned.receive(channel, [helper], set()))
