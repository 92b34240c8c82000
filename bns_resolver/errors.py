"""The project's exception hierarchy.

Every error we raise on purpose derives from GatewayError. The docstring of each
class is its default message; callers add specifics (which name, which height).
Errors are raised deep inside and turned into DNS rcodes or CLI messages at the edge.
"""

from __future__ import annotations


class GatewayError(Exception):
    """bns-resolver failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(GatewayError):
    """The configuration is invalid."""


class ChainError(GatewayError):
    """The chain data is inconsistent with the local index."""


class RpcError(GatewayError):
    """bitcoind answered a JSON-RPC call with an error."""

    def __init__(self, message: str | None = None, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ZoneFileError(GatewayError):
    """A zone file could not be parsed."""


class VerificationError(GatewayError):
    """Data did not match the hash the chain commits to."""


class SnapshotError(GatewayError):
    """A snapshot export is malformed or failed its integrity check."""


class IndexStoreError(GatewayError):
    """The local index is missing, corrupt or of an unknown schema version."""


class IndexUnavailable(IndexStoreError):
    """The index database cannot be reached (a server restarting, a file gone)."""


class IndexDamagedError(IndexStoreError):
    """The index file is damaged (truncated or corrupt); a restart cannot fix it."""
