"""The UDP reader's replay cache: an exact repeat of a query is answered by one lookup.

Keys are the query's bytes after its ID, values the answer's bytes after its ID and the
monotonic time until which those exact bytes may be sent: forever for BNS's answers (until
the index changes them), at most a second for upstream ones (their TTLs count down).
The gateway remembers answers here; the UDP reader (server.py) only looks them up.
"""

from __future__ import annotations

from collections.abc import Callable

from bns_resolver.dns.cache import evict_oldest

FOREVER = float("inf")  # authoritative answers live until the index changes
Entry = tuple[bytes, float]  # (answer after its ID, deadline)


class ReplayCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        # Public for the native answerer (answers/_native.c), which remembers as `remember` does.
        self.entries: dict[bytes, Entry] = {}
        # get(query bytes after the ID) -> Entry | None. The dict's own method, bound once: the
        # reader calls it for every datagram, and a Python method here would add a call to that loop.
        self.get: Callable[[bytes], Entry | None] = self.entries.get

    def remember(self, packet: bytes, answer: bytes, until: float) -> None:
        """Let the reader answer this exact query (any ID) with `answer` until `until`."""
        entries = self.entries
        if len(entries) >= self.max_entries:
            self.make_room()
        entries[packet[2:]] = (answer[2:], until)

    def make_room(self) -> None:
        evict_oldest(self.entries, self.max_entries)

    def drop(self, bns: Callable[[bytes], bool], forwarded: Callable[[bytes], bool]) -> None:
        """Drop BNS answers whose (lower-case wire) question name `bns` picks, upstream ones `forwarded` picks."""
        entries = self.entries
        for key in [key for key, (_, until) in entries.items()
                    if (bns if until == FOREVER else forwarded)(question_name(key))]:
            del entries[key]

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


def question_name(key: bytes) -> bytes:
    """The question name of a replay key (the query after its ID), lower-cased like cache keys."""
    offset = 10
    while offset < len(key) and key[offset]:
        offset += key[offset] + 1
    return key[10:offset + 1].lower()
