"""Value parsers for settings: each turns one raw TOML/env/flag value into a typed value or says why not.

A parser raises `Invalid` with a one-line reason; `config_table.checked` adds where the value came from
(file and key, environment variable, or flag) and turns it into a ConfigError.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
Address = tuple[str, int]


class Invalid(ValueError):
    """A value that cannot be used; the message is the one-line reason."""


def kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {kind(value)} {_shown(value)}")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {kind(value)} {_shown(value)}")
    if not value.strip():
        raise Invalid("must not be empty")
    return value


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be an integer, got {kind(value)} {_shown(value)}")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be at most {maximum}, got {value}")
        return value

    return parse


def number(minimum: float, *, inclusive: bool = True, unit: str = "") -> Callable[[Any], float]:
    """A float (TOML integers accepted); `inclusive=False` makes `minimum` itself impossible."""

    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"must be a number{unit}, got {kind(value)} {_shown(value)}")
        if not math.isfinite(value) or value < minimum or (not inclusive and value == minimum):
            bound = f"at least {minimum:g}" if inclusive else f"more than {minimum:g}"
            raise Invalid(f"must be {bound}{unit}, got {value:g}")
        return float(value)

    return parse


def count_or_auto(maximum: int) -> Callable[[Any], int | str]:
    """A count from 1 to `maximum`, or "auto" (the caller decides what auto means)."""
    counted = integer(minimum=1, maximum=maximum)

    def parse(value: Any) -> int | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, str):
            raise Invalid(f"must be an integer or \"auto\", got {_shown(value)}")
        try:
            return counted(value)
        except Invalid as exc:
            raise Invalid(f"{exc} (or \"auto\")") from None

    return parse


def choice(enum_type: type[E]) -> Callable[[Any], E]:
    def parse(value: Any) -> E:
        allowed = ", ".join(str(member.value) for member in enum_type)
        try:
            return enum_type(string(value).strip().lower())
        except ValueError:
            raise Invalid(f"must be one of {allowed}, got {_shown(value)}") from None

    return parse


def list_of(item: Callable[[Any], T], *, allow_empty: bool = True) -> Callable[[Any], tuple[T, ...]]:
    def parse(value: Any) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise Invalid(f"must be a list, got {kind(value)} {_shown(value)}")
        if not value and not allow_empty:
            raise Invalid("must not be empty")
        return tuple(item(element) for element in value)

    return parse


def table_of(key: Callable[[str], str], value: Callable[[Any], T]) -> Callable[[Any], dict[str, T]]:
    def parse(raw: Any) -> dict[str, T]:
        if not isinstance(raw, dict):
            raise Invalid(f"must be a table (e.g. {{ name = value }}), got {kind(raw)} {_shown(raw)}")
        parsed: dict[str, T] = {}
        for name, element in raw.items():
            try:
                parsed[key(name)] = value(element)
            except Invalid as exc:
                raise Invalid(f"{name}: {exc}") from None
        return parsed

    return parse


def ip_literal(value: Any) -> str:
    text = string(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Invalid(f"{text!r} is not an IP address (host names are not accepted here)") from None


def address(default_port: int, *, allow_port_zero: bool = False) -> Callable[[Any], Address]:
    """'1.2.3.4', '1.2.3.4:53', '[::1]:5354', '::1' → (host, port); the host must be an IP literal."""

    def parse(value: Any) -> Address:
        text = string(value).strip()
        if text.startswith("["):
            host, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise Invalid(f"{text!r} is not ADDR[:PORT] (IPv6 as [::1]:53)")
            port_text = rest[1:]
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        else:
            host, port_text = text, ""
        return ip_literal(host), _port(port_text, default_port, allow_port_zero, text)

    return parse


def _port(text: str, default: int, allow_zero: bool, whole: str) -> int:
    if not text:
        return default
    if not text.isdigit():
        raise Invalid(f"{whole!r}: the port must be a number, got {text!r}")
    port = int(text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise Invalid(f"{whole!r}: the port must be {0 if allow_zero else 1}-65535, got {port}")
    return port


def network(value: Any) -> str:
    text = string(value).strip()
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise Invalid(f"{text!r} is not a network in CIDR notation: {exc}") from None


def url(*schemes: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = string(value).strip()
        parts = urlsplit(text)
        if parts.scheme not in schemes or not parts.netloc:
            raise Invalid(f"{text!r} is not a {' or '.join(schemes)} URL")
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError as exc:
            raise Invalid(f"{text!r}: {exc}") from None
        return text

    return parse


def path(value: Any) -> Path:
    return Path(string(value)).expanduser()


def magic(value: Any) -> bytes:
    text = string(value)
    if len(text) != 2 or not text.isascii():
        raise Invalid(f"must be exactly 2 ASCII characters, got {text!r}")
    return text.encode("ascii")


def user(value: Any) -> str:
    import pwd

    name = string(value)
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise Invalid(f"no such user {name!r} on this system") from None
    return name


def namespace_id(value: Any) -> str:
    text = string(value).strip().lower().rstrip(".")
    if not text or "." in text or len(text) > 19:
        raise Invalid(f"{value!r} is not a namespace ID (one label, at most 19 characters)")
    return text
