"""Tolerant parsing of BNS zone files into DNS records.

Real BNS zone files are irregular: tabs or spaces, records without a class,
`$ORIGIN x $TTL y` on one line, no final newline, legacy JSON profiles. We parse
line by line so that one bad record costs that record only, and hand each
record's rdata to dnspython, which knows every presentation format.

Owners are anchored at the on-chain name being resolved, not at `$ORIGIN`:
the chain vouches for the name, and a zone file must not be able to claim
records for names outside its own subtree.
"""

from __future__ import annotations

import functools

import re
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.rdtypes.ANY.URI
import dns.rdtypes.IN.A
import dns.tokenizer

from bns_resolver.errors import ZoneFileError

MAX_ZONEFILE_BYTES = 40960
DEFAULT_TTL = 3600

# Types a BNS zone file may carry (zone-file-py's list); anything else is skipped.
SUPPORTED_TYPES = frozenset(
    dns.rdatatype.from_text(t)
    for t in ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT", "SPF", "URI")
)

_TEXT_TYPES = {dns.rdatatype.TXT: dns.rdtypes.ANY.TXT.TXT, dns.rdatatype.SPF: dns.rdtypes.ANY.SPF.SPF}

# dnspython imports each type's class on first use; do it now, while the process may
# still read its own install (serve can drop root privileges right after start-up).
for _rdtype in SUPPORTED_TYPES:
    dns.rdata.get_rdata_class(dns.rdataclass.IN, _rdtype)

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[^\s"]+')


@dataclass(frozen=True)
class ZoneRecord:
    owner: str  # absolute, lower-case, no trailing dot
    rdtype: int
    ttl: int
    rdata: dns.rdata.Rdata
    # TXT/SPF strings exactly as written. BNS zone files may hold strings over DNS's
    # 255-byte limit (a multisig subdomain `sig=`); rdata carries them cut to size.
    strings: tuple[bytes, ...] = ()

    # Worked out once per parsed record (zones are cached), so answering a query runs no dnspython:
    # dnspython reads zone files, dnslib writes messages.
    @functools.cached_property
    def wire(self) -> bytes:
        """The RDATA in wire form, uncompressed."""
        # to_wire() without a file returns the bytes (typed Optional for the file form).
        return self.rdata.to_wire() or b""

    @functools.cached_property
    def cname_target(self) -> str:
        """A CNAME's target as a lower-case name without the final dot ("" for other types)."""
        if self.rdtype != dns.rdatatype.CNAME:
            return ""
        return str(self.rdata.target.to_text(omit_final_dot=True)).lower()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ParsedZone:
    origin: str
    records: tuple[ZoneRecord, ...]
    skipped: tuple[str, ...] = field(default=())  # one reason per skipped line

    def owners(self) -> dict[str, list[ZoneRecord]]:
        grouped: dict[str, list[ZoneRecord]] = {}
        for record in self.records:
            grouped.setdefault(record.owner, []).append(record)
        return grouped


@dataclass
class _Cursor:
    anchor: dns.name.Name
    ttl: int = DEFAULT_TTL
    last_owner: str | None = None


def parse_zonefile(content: bytes, name: str) -> ParsedZone:
    """Parse a zone file served for the on-chain name `name`.

    Raises ZoneFileError when the bytes are not a zone file at all (too large,
    not text, a JSON profile, or no record could be read).
    """
    text = _decode(content)
    cursor = _Cursor(anchor=dns.name.from_text(name.lower()))
    records: list[ZoneRecord] = []
    skipped: list[str] = []
    for lineno, line in enumerate(_logical_lines(text), start=1):
        try:
            record = _parse_line(line, cursor)
        except (ZoneFileError, dns.exception.DNSException, ValueError) as exc:
            skipped.append(f"line {lineno}: {exc}")
            continue
        if record is not None:
            records.append(record)
    if not records and skipped:
        raise ZoneFileError(f"zone file for {name} has no readable record ({skipped[0]})")
    return ParsedZone(origin=name.lower(), records=tuple(records), skipped=tuple(skipped))


def _decode(content: bytes) -> str:
    if len(content) > MAX_ZONEFILE_BYTES:
        raise ZoneFileError(f"zone file is {len(content)} bytes, over the {MAX_ZONEFILE_BYTES}-byte limit")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZoneFileError(f"zone file is not UTF-8 text: {exc}") from None
    if text.lstrip().startswith(("{", "[")):
        raise ZoneFileError("content is a legacy JSON profile, not a zone file")
    return text


def _logical_lines(text: str) -> list[str]:
    """Split into records: drop comments, join parenthesised continuations."""
    lines: list[str] = []
    pending = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = _strip_comment(raw)
        if pending:
            pending += " " + line.strip()
        else:
            pending = line
        if pending.count("(") > pending.count(")"):
            continue
        if pending.strip():
            lines.append(pending.replace("(", " ").replace(")", " ") if "(" in pending else pending)
        pending = ""
    if pending.strip():
        lines.append(pending)
    return lines


def _strip_comment(line: str) -> str:
    in_quotes = False
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif char == ";" and not in_quotes:
            return line[:index]
    return line


def _parse_line(line: str, cursor: _Cursor) -> ZoneRecord | None:
    tokens = [(m.group(0), m.start()) for m in _TOKEN.finditer(line)]
    tokens = _consume_directives(tokens, cursor)
    if not tokens:
        return None
    inherits_owner = line[:1].isspace() and not line.lstrip().startswith("$")
    if inherits_owner:
        if cursor.last_owner is None:
            raise ZoneFileError("record has no owner")
        owner = cursor.last_owner
    else:
        owner = _owner(tokens[0][0], cursor.anchor)
        tokens = tokens[1:]
    ttl, rdtype, rdata_at = _ttl_class_type(tokens, cursor.ttl)
    rdata_text = line[tokens[rdata_at][1]:].strip() if rdata_at < len(tokens) else ""
    strings: tuple[bytes, ...] = ()
    rdtype = dns.rdatatype.RdataType.make(rdtype)
    if rdtype in _TEXT_TYPES:
        strings = _text_strings(rdata_text)
        rdata: dns.rdata.Rdata = _TEXT_TYPES[rdtype](dns.rdataclass.IN, rdtype, _dns_sized(strings))
    elif rdtype in _SIMPLE_TYPES and (quick := _SIMPLE_TYPES[rdtype](rdata_text)) is not None:
        rdata = quick
    else:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, rdata_text, origin=cursor.anchor, relativize=False)
    cursor.last_owner = owner
    return ZoneRecord(owner=owner, rdtype=rdtype, ttl=ttl, rdata=rdata, strings=strings)


def _quick_uri(text: str) -> dns.rdata.Rdata | None:
    """`priority weight "target"`, the shape of nearly every BNS record, without the tokenizer."""
    match = _URI_SHAPE.fullmatch(text)
    if match is None:
        return None
    priority, weight, target = match.groups()
    return dns.rdtypes.ANY.URI.URI(dns.rdataclass.IN, dns.rdatatype.URI, int(priority), int(weight), target.encode())


def _quick_a(text: str) -> dns.rdata.Rdata | None:
    return dns.rdtypes.IN.A.A(dns.rdataclass.IN, dns.rdatatype.A, text) if _A_SHAPE.fullmatch(text) else None


_URI_SHAPE = re.compile(r'(\d{1,5})\s+(\d{1,5})\s+"([^"\\]+)"')
_A_SHAPE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_SIMPLE_TYPES = {dns.rdatatype.URI: _quick_uri, dns.rdatatype.A: _quick_a}


def _text_strings(rdata_text: str) -> tuple[bytes, ...]:
    """The character-strings of a TXT/SPF record, unescaped, of any length."""
    strings = []
    for token in dns.tokenizer.Tokenizer(rdata_text).get_remaining():
        token = token.unescape_to_bytes()
        if not (token.is_quoted_string() or token.is_identifier()):
            raise ZoneFileError("TXT data must be strings")
        strings.append(token.value)
    if not strings:
        raise ZoneFileError("TXT record without strings")
    return tuple(strings)


def _dns_sized(strings: tuple[bytes, ...]) -> list[bytes]:
    return [s[i:i + 255] for s in strings for i in range(0, max(len(s), 1), 255)]


def _consume_directives(tokens: list[tuple[str, int]], cursor: _Cursor) -> list[tuple[str, int]]:
    while tokens and tokens[0][0].startswith("$"):
        directive = tokens[0][0].upper()
        if len(tokens) < 2:
            raise ZoneFileError(f"{directive} without a value")
        value = tokens[1][0]
        if directive == "$TTL":
            cursor.ttl = _ttl_value(value)
        elif directive != "$ORIGIN":
            raise ZoneFileError(f"unsupported directive {directive}")
        # $ORIGIN is noted but not trusted: owners stay anchored at the chain's name.
        tokens = tokens[2:]
    return tokens


def _owner(token: str, anchor: dns.name.Name) -> str:
    if token == "@":
        owner = anchor
    elif token.endswith("."):
        owner = dns.name.from_text(token)
    else:
        owner = dns.name.from_text(token, origin=anchor)
    if not owner.is_subdomain(anchor):
        raise ZoneFileError(f"owner {token} lies outside {anchor.to_text(omit_final_dot=True)}")
    return owner.to_text(omit_final_dot=True).lower()


def _ttl_class_type(tokens: list[tuple[str, int]], default_ttl: int) -> tuple[int, int, int]:
    """Read the optional TTL and class (either order) and the type; return where rdata starts."""
    ttl = default_ttl
    for index, (token, _) in enumerate(tokens[:3]):
        upper = token.upper()
        if token.isdigit():
            ttl = _ttl_value(token)
        elif upper in ("IN", "CH", "HS", "CS"):
            if upper != "IN":
                raise ZoneFileError(f"class {upper} is not supported")
        else:
            rdtype = dns.rdatatype.from_text(upper)
            if rdtype not in SUPPORTED_TYPES:
                raise ZoneFileError(f"record type {upper} is not served")
            return ttl, rdtype, index + 1
    raise ZoneFileError("record has no type")


def _ttl_value(token: str) -> int:
    if not token.isdigit():
        raise ZoneFileError(f"bad TTL {token!r}")
    return min(int(token), 2**31 - 1)
