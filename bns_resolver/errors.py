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


# RFC 8914 Extended DNS Error codes we report (dns/rcodes.py maps outcomes to them).
EDE_OTHER = 0
EDE_STALE_ANSWER = 3
EDE_NOT_READY = 14
EDE_NO_REACHABLE_AUTHORITY = 22
EDE_NETWORK_ERROR = 23
EDE_INVALID_DATA = 24


class ZoneUnavailable(GatewayError):
    """The zone file for a name cannot be used now.

    Carries the EDE code (RFC 8914) the DNS edge reports: EDE_NO_REACHABLE_AUTHORITY while
    the file has not been obtained (it may arrive any moment), EDE_INVALID_DATA when it
    does not verify or parse (it never will)."""

    def __init__(self, info_code: int, reason: str) -> None:
        super().__init__(reason)
        self.info_code = info_code
        self.reason = reason
