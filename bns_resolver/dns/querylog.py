"""The optional query log (`[log] queries = true`): one line per answered query.

    client=192.0.2.7 name=alice.id. type=A rcode=NOERROR ede=- source=store us=41

`source` says which part of the server answered: `replay` (the UDP reader's
repeat table), `cache` (an answer cached from an earlier query), `store` (the
compiled answer store), `index` (the SQL index and zone-file path), `forward`
(an upstream), `policy` (refused, malformed or unsupported queries). `us` is the
time from reading the query to having its answer, upstream wait included.

Off by default: the fast paths pay nothing for it (the readers check once per
batch). When on, lines are capped per second so a flood cannot become a log flood;
what is held back is counted on the next line.
"""

from __future__ import annotations

import logging
import struct
import time

import dns.rcode
import dns.rdatatype

from bns_resolver.dns.loglimit import LogLimiter
from bns_resolver.dns.wire import TYPE_OPT, walk_message

QUERY_LOGGER = logging.getLogger("bns_resolver.queries")
DEFAULT_LINES_PER_SECOND = 1000
EDE_OPTION = 15  # RFC 8914


class QueryLog:
    """Writes the query lines; `record` is called once per answered (or dropped) query."""

    def __init__(self, lines_per_second: int = DEFAULT_LINES_PER_SECOND,
                 logger: logging.Logger = QUERY_LOGGER) -> None:
        self._lines = LogLimiter(logger, period=1.0, burst=lines_per_second)

    @staticmethod
    def started() -> float:
        return time.perf_counter()

    def record(self, client: str, query: bytes, answer: bytes | None, source: str, started: float) -> None:
        micros = int((time.perf_counter() - started) * 1e6)
        name, qtype = question_of(query)
        rcode, ede = outcome_of(answer)
        self._lines.info("query", "client=%s name=%s type=%s rcode=%s ede=%s source=%s us=%d",
                         client, name, qtype, rcode, ede, source, micros)


def question_of(query: bytes) -> tuple[str, str]:
    """The question's name (as sent, escaped) and type mnemonic; '-' where the packet has none."""
    if len(query) < 12 or struct.unpack_from("!H", query, 4)[0] == 0:
        return "-", "-"
    labels: list[str] = []
    offset = 12
    while offset < len(query):
        length = query[offset]
        if length == 0:
            offset += 1
            break
        if length > 63 or offset + 1 + length > len(query):
            return "<malformed>", "-"
        labels.append(_escaped(query[offset + 1:offset + 1 + length]))
        offset += 1 + length
    if offset + 2 > len(query):
        return ".".join(labels) + ".", "-"
    qtype = struct.unpack_from("!H", query, offset)[0]
    return ".".join(labels) + ".", dns.rdatatype.to_text(qtype)


def outcome_of(answer: bytes | None) -> tuple[str, str]:
    """The answer's rcode mnemonic and its first Extended DNS Error code ('-' when none)."""
    if answer is None or len(answer) < 12:
        return "DROPPED", "-"
    rcode = dns.rcode.to_text(dns.rcode.Rcode.make(answer[3] & 0x0F))
    if struct.unpack_from("!H", answer, 10)[0] == 0:
        return rcode, "-"  # no additional records, so no OPT and no EDE
    try:
        records = walk_message(answer).records
    except ValueError:
        return rcode, "-"  # the rcode is still known
    for record in records:
        if record.rtype == TYPE_OPT:
            code = _first_ede(answer, record.fixed + 10, record.end)
            if code is not None:
                return rcode, str(code)
    return rcode, "-"


def _first_ede(answer: bytes, offset: int, end: int) -> int | None:
    """The INFO-CODE of the first EDE option in an OPT record's options (RFC 6891 §6.1.2), if any."""
    while offset + 4 <= end:
        code, length = struct.unpack_from("!HH", answer, offset)
        if code == EDE_OPTION and length >= 2 and offset + 6 <= end:
            return int(struct.unpack_from("!H", answer, offset + 4)[0])
        offset += 4 + length
    return None


def _escaped(label: bytes) -> str:
    """A label as text a log reader cannot be fooled by: no spaces, newlines or control bytes."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) else f"\\{b:03d}" for b in label)
