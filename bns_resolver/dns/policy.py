"""Namespaces shared with the ICANN root, and what to do in them.

`id` is also Indonesia's ccTLD and `app` a gTLD: being authoritative for all of
`id` would break every Indonesian site for our users. We ask the upstreams
whether each namespace exists as a TLD (SOA query for `<namespace>.`) unless the
configuration says so, and apply a per-namespace policy:
  bns-first   answer what BNS knows, forward every other name (default)
  bns-only    authoritative; NXDOMAIN for names BNS does not know
  icann-first ask upstream first; use BNS where upstream says NXDOMAIN
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bns_resolver.config import NamespaceMode

log = logging.getLogger(__name__)


# The namespace modes are the settings' own enum: one definition for config and policy.
Mode = NamespaceMode


class TldStatus(enum.Enum):
    UNKNOWN = "unknown"
    SHARED = "exists upstream"
    BNS_ONLY = "not in the ICANN root"


@dataclass
class NamespacePolicy:
    default_mode: Mode = Mode.BNS_FIRST
    modes: dict[str, Mode] = field(default_factory=dict)
    # Configured answers to "is this namespace also an ICANN TLD?"; probes fill the rest.
    configured_shared: dict[str, bool] = field(default_factory=dict)
    probed: dict[str, TldStatus] = field(default_factory=dict)
    # Why the last probe of a namespace got no verdict (upstream refused, failed or timed out).
    probe_errors: dict[str, str] = field(default_factory=dict)
    # Called when a probe changes a namespace's verdict (what the store's native answerer planned
    # from the old one must go).
    listeners: list[Callable[[], None]] = field(default_factory=list, compare=False, repr=False)

    def status(self, namespace: str) -> TldStatus:
        if namespace in self.configured_shared:
            return TldStatus.SHARED if self.configured_shared[namespace] else TldStatus.BNS_ONLY
        return self.probed.get(namespace, TldStatus.UNKNOWN)

    def effective_mode(self, namespace: str) -> Mode:
        """The mode to apply now; a namespace only BNS has is simply authoritative."""
        if self.status(namespace) is TldStatus.BNS_ONLY:
            return Mode.BNS_ONLY
        # Until a probe answers, treat the namespace as shared: forwarding unknown names
        # is harmless, while a false NXDOMAIN could hide a real ICANN domain.
        return self.modes.get(namespace, self.default_mode)

    def record_probe(self, namespace: str, status: TldStatus) -> None:
        changed = self.probed.get(namespace) is not status
        if changed:
            log.info("namespace %s: %s", namespace, status.value)
        self.probed[namespace] = status
        self.probe_errors.pop(namespace, None)
        if changed:
            for listener in self.listeners:
                listener()

    def record_probe_failure(self, namespace: str, reason: str) -> None:
        """No verdict: the previous one (or UNKNOWN) stands, and `status` says why."""
        self.probe_errors[namespace] = reason

    def describe(self, namespaces: frozenset[str]) -> dict[str, dict[str, str]]:
        described = {}
        for ns in sorted(namespaces):
            entry = {"tld": self.status(ns).value, "mode": self.effective_mode(ns).value}
            if ns in self.probe_errors:
                entry["probe_error"] = self.probe_errors[ns]
            described[ns] = entry
        return described
