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
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from socket import inet_aton

from bns_resolver.answers.nodes import Item, binding_items
from bns_resolver.hashing import hash160_hex
from bns_resolver.zonefiles.store import verifies

_LABEL = re.compile(r"[a-z0-9-]{3,63}")
_STRING_CHARS = r"[A-Za-z0-9:/._=+-]"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_RECORD = (r"(?:_[a-z0-9_.-]*[\t ]+(?:IN[\t ]+)?(?:URI[\t ]+\d{1,5}[\t ]+\d{1,5}|TXT)[\t ]+"
           rf'"{_STRING_CHARS}{{4,200}}"|@[\t ]+(?:IN[\t ]+)?A[\t ]+{_IPV4})\n')
_BODY = re.compile(rf"\$TTL \d{{1,9}}\n(?:{_RECORD}){{1,8}}\n*")
# The bytes a file's records vary in: a quoted string (written as is) or an address (4 bytes).
_VALUE = re.compile(rf'"({_STRING_CHARS}{{4,200}})"|(?<=[\t ]A[\t ])({_IPV4})(?=\n)')
_OWNER = re.compile(r"^(\S+)", re.M)


# Picks the bytes for a template's %s from the fills (label, then values), in order.
Picker = Callable[[tuple[bytes, ...]], tuple[bytes, ...]]
# An entry as (key, the picker of its fills, value, the value's), see _templates.
Template = tuple[bytes, Picker, bytes, Picker]


@dataclass(frozen=True)
class _Shape:
    items: list[Item]  # the entries, finished (with the key listing owner names), of placeholder bytes
    nodes: int  # how many of them are owner names (what the compile report counts)
    templates: list[Template]


def _shape(items: list[Item], nodes: int, label: bytes, values: list[bytes]) -> _Shape:
    return _Shape(items, nodes, _templates(items, [label, *values]))


Finish = Callable[[str, list[Item]], list[Item]]


class SubdomainShapes:
    """Entries of template-shaped subdomain zone files, each shape compiled once.

    `finish(fqn, items)` completes a binding's entries (compile.with_nodes_key); it runs per
    shape too, so its output is filled in with the rest."""

    def __init__(self, finish: Finish) -> None:
        self._finish = finish
        self._shapes: dict[tuple[object, ...], _Shape | None] = {}
        self.hits = 0

    def items(self, fqn: str, namespace: str, zonefile_hash: str,
              content: bytes | None) -> tuple[int, list[Item]] | None:
        """(owner names, finished entries) as `binding_items` and `finish` give them for a "node"
        binding, or None: take that path."""
        split = _split(fqn, content)
        if split is None or content is None:
            return None
        label, domain, parts = split
        if not verifies(zonefile_hash, content):
            return None  # the slow path says why, as SERVFAIL
        first = "a" if label[0] > "_" else "0"  # which side of '_' the label sorts on
        strings = parts[1::3]
        key = (first, len(label), domain, namespace, tuple(parts[0::3]),
               tuple(len(s) if s else -1 for s in strings))
        shape = self._shapes.get(key, _MISSING)
        if shape is _MISSING:
            shape = self._shapes[key] = _build(first, len(label), domain, namespace, parts, self._finish)
        if shape is None:
            return None
        self.hits += 1
        values = [s.encode() if s else inet_aton(ip) for s, ip in zip(strings, parts[2::3])]
        return shape.nodes, _fill(shape, label.encode(), values)


_MISSING = _Shape([], 0, [])


def _split(fqn: str, content: bytes | None) -> tuple[str, str, list[str]] | None:
    """(first label, domain, the body cut by `_VALUE`) of a file of the pattern, else None."""
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
        if owner != "@" and not all(part.startswith("_") for part in owner.split(".")):
            return None
    return label, domain, _VALUE.split(body)


def _placeholders(first: str, size: int, filler: str, parts: list[str]) -> tuple[str, str, list[bytes]]:
    """A placeholder label, the body with placeholder values, and those values' bytes."""
    label = first + filler * (size - 1)
    body, values = [parts[0]], []
    for index, (string, text) in enumerate(zip(parts[1::3], parts[3::3])):
        if string:
            value = (f"~{filler}{index}" + "~" * 200)[:len(string) - 1] + "!"
            body.append(f'"{value}"')
            values.append(value.encode())
        else:
            address = bytes([126, ord(filler), 33 + index, 33])
            body.append(".".join(map(str, address)))
            values.append(address)
        body.append(text)
    return label, "".join(body), values


def _compile(fqn: str, namespace: str, body: str) -> list[Item] | None:
    content = f"$ORIGIN {fqn}\n{body}".encode()
    kind, items = binding_items(fqn, namespace, hash160_hex(content), content)
    return items if kind == "node" else None


def _build(first: str, size: int, domain: str, namespace: str, parts: list[str], finish: Finish) -> _Shape | None:
    if len(parts) // 3 > 9:
        return None
    label_a, body_a, values_a = _placeholders(first, size, "_", parts)
    label_b, body_b, values_b = _placeholders(first, size, "z", parts)
    items_a = _compile(f"{label_a}.{domain}", namespace, body_a)
    items_b = _compile(f"{label_b}.{domain}", namespace, body_b)
    if items_a is None or items_b is None:
        return None
    shape = _shape(finish(f"{label_a}.{domain}", items_a), len(items_a), label_a.encode(), values_a)
    if _fill(shape, label_b.encode(), values_b) != finish(f"{label_b}.{domain}", items_b):
        return None  # the entries do not follow the bytes one for one: compile each alike file whole
    return shape


def _fill(shape: _Shape, label: bytes, values: list[bytes]) -> list[Item]:
    """The shape's entries with its placeholders replaced by these bytes, in one pass each (so a
    value's bytes are never searched again: an address may read as another placeholder)."""
    fills = (label, *values)
    return [(key % key_fills(fills), value % value_fills(fills)) for key, key_fills, value, value_fills in shape.templates]


def _picker(order: tuple[int, ...]) -> Picker:
    # Built once per shape and called per subdomain: itemgetter for several (it returns a bare
    # item for one, which % would not take as a tuple).
    if len(order) > 1:
        return itemgetter(*order)
    if order:
        only = order[0]
        return lambda fills: (fills[only],)
    return lambda fills: ()


def _templates(items: list[Item], placeholders: list[bytes]) -> list[Template]:
    """Each entry as a %-template of its bytes and which placeholder goes into each %s."""
    index = {old: number for number, old in enumerate(placeholders)}
    pattern = re.compile(b"(" + b"|".join(re.escape(old) for old in placeholders) + b")")

    def template(data: bytes) -> tuple[bytes, Picker]:
        pieces = pattern.split(data)
        return (b"%s".join(piece.replace(b"%", b"%%") for piece in pieces[0::2]),
                _picker(tuple(index[old] for old in pieces[1::2])))

    return [(*template(key), *template(value)) for key, value in items]
