"""Compiling the common subdomain zone file once per shape instead of once per subdomain.

Almost every subdomain's zone file is a registrar's template: `$ORIGIN <fqn>`, `$TTL`, a URI
record to the owner's Gaia profile and sometimes a TXT record. Two such files that differ only
in the subdomain's first label and in the bytes inside their quoted strings, each of the same
length, compile to entries that differ only in those bytes: every length byte, compression
pointer and sort order stays where it was. So a compile builds each shape's entries once, from
the shape itself (the label and strings replaced by same-length placeholders), and fills in each
subdomain's own bytes.

What keeps this exact: only files matching a strict pattern take the path (owners all
underscore labels, strings of plain URL characters, a first label without underscores, so node
order is settled by the label's first character, which the placeholder keeps in class); each
file's hash is checked against the subdomain's hash first, as the slow path does; and each new
shape is built twice, with two different placeholder sets, and used only if filling one in with
the other's bytes gives the other exactly. Anything else goes through `binding_items`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bns_resolver.answers.nodes import Item, binding_items
from bns_resolver.errors import VerificationError
from bns_resolver.hashing import hash160_hex
from bns_resolver.zonefiles.store import verify_zonefile

_LABEL = re.compile(r"[a-z0-9-]{3,63}")
_STRING_CHARS = r"[A-Za-z0-9:/._=+-]"
_RECORD = (r"_[a-z0-9_.-]*[\t ]+(?:IN[\t ]+)?(?:URI[\t ]+\d{1,5}[\t ]+\d{1,5}|TXT)[\t ]+"
           rf'"{_STRING_CHARS}{{4,200}}"\n')
_BODY = re.compile(rf"\$TTL \d{{1,9}}\n(?:{_RECORD}){{1,8}}\n*")
_STRING = re.compile(rf'"({_STRING_CHARS}{{4,200}})"')
_OWNER = re.compile(r"^(\S+)", re.M)


@dataclass(frozen=True)
class _Shape:
    items: list[Item]
    label: bytes  # the placeholder first label, as it appears in the entries
    strings: list[bytes]  # the placeholder strings, in file order


class SubdomainShapes:
    """Entries of template-shaped subdomain zone files, each shape compiled once."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[str, str, str], _Shape | None] = {}
        self.hits = 0

    def items(self, fqn: str, namespace: str, zonefile_hash: str, content: bytes | None) -> list[Item] | None:
        """The binding's entries as `binding_items` gives them ("node" kind), or None: take that path."""
        parts = _split(fqn, content)
        if parts is None or content is None:
            return None
        label, domain, body, strings = parts
        try:
            verify_zonefile(zonefile_hash, content)
        except VerificationError:
            return None  # the slow path says why, as SERVFAIL
        first = "a" if label[0] > "_" else "0"  # which side of '_' the label sorts on
        key = (f"{first}{len(label)}.{domain}", _STRING.sub(lambda m: f'"{len(m.group(1))}"', body),
               namespace)
        if key not in self._shapes:
            self._shapes[key] = _build(first, len(label), domain, namespace, body)
        shape = self._shapes[key]
        if shape is None:
            return None
        self.hits += 1
        return _fill(shape, label.encode(), [s.encode() for s in strings])


def _split(fqn: str, content: bytes | None) -> tuple[str, str, str, list[str]] | None:
    if content is None or not content.startswith(b"$ORIGIN "):
        return None
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        return None
    head, _, body = text.partition("\n")
    label, _, domain = fqn.partition(".")
    if head != f"$ORIGIN {fqn}" or not _LABEL.fullmatch(label) or label in domain.split("."):
        return None
    if not _BODY.fullmatch(body):
        return None
    for owner in _OWNER.findall(body)[1:]:  # the first line is $TTL
        if not all(part.startswith("_") for part in owner.split(".")):
            return None
    return label, domain, body, _STRING.findall(body)


def _placeholders(first: str, size: int, filler: str, body: str) -> tuple[str, str, list[str]]:
    label = first + filler * (size - 1)
    strings: list[str] = []

    def swap(match: re.Match[str]) -> str:
        index = len(strings)
        strings.append((f"~{filler}{index}" + "~" * 200)[:len(match.group(1)) - 1] + "!")
        return f'"{strings[-1]}"'

    return label, _STRING.sub(swap, body), strings


def _compile(label: str, domain: str, namespace: str, body: str) -> list[Item] | None:
    fqn = f"{label}.{domain}"
    content = f"$ORIGIN {fqn}\n{body}".encode()
    kind, items = binding_items(fqn, namespace, hash160_hex(content), content)
    return items if kind == "node" else None


def _build(first: str, size: int, domain: str, namespace: str, body: str) -> _Shape | None:
    if len(_STRING.findall(body)) > 9:
        return None
    label_a, body_a, strings_a = _placeholders(first, size, "_", body)
    label_b, body_b, strings_b = _placeholders(first, size, "z", body)
    items_a = _compile(label_a, domain, namespace, body_a)
    items_b = _compile(label_b, domain, namespace, body_b)
    if items_a is None or items_b is None:
        return None
    shape = _Shape(items_a, label_a.encode(), [s.encode() for s in strings_a])
    if _fill(shape, label_b.encode(), [s.encode() for s in strings_b]) != items_b:
        return None  # the entries do not follow the bytes one for one: compile each alike file whole
    return shape


def _fill(shape: _Shape, label: bytes, strings: list[bytes]) -> list[Item]:
    swaps = [(shape.label, label), *zip(shape.strings, strings)]
    filled = []
    for key, value in shape.items:
        for old, new in swaps:
            key = key.replace(old, new)
            value = value.replace(old, new)
        filled.append((key, value))
    return filled
