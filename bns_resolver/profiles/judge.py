"""A name's profile, fetched and judged against its owner: the one entry point the web plane uses."""

from __future__ import annotations

from twisted.internet import defer

from bns_resolver.profiles.addresses import owner_hash160
from bns_resolver.profiles.fetch import Fetched, ProfileFetcher
from bns_resolver.profiles.tokens import ProfileVerdict, verify_profile_document


class ProfileJudge:
    def __init__(self, fetcher: ProfileFetcher) -> None:
        self.fetcher = fetcher
        # (url, owner, fetch time) -> verdict: a signature is checked once per fetched copy.
        self._verdicts: dict[tuple[str, str, float], ProfileVerdict] = {}

    def judge(self, url: str | None, owner: str | None) -> defer.Deferred[ProfileVerdict | None]:
        """None when the zone file names no profile; otherwise a verdict, verified or with its reason."""
        if url is None:
            return defer.succeed(None)
        return self.fetcher.fetch(url).addCallback(self._verdict, owner or "")

    def _verdict(self, fetched: Fetched, owner: str) -> ProfileVerdict:
        if fetched.body is None:
            return ProfileVerdict(False, f"profile not fetched: {fetched.error}")
        key = (fetched.url, owner, fetched.at)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._judge_body(fetched.body, owner)
            if len(self._verdicts) > 4096:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    @staticmethod
    def _judge_body(body: bytes, owner: str) -> ProfileVerdict:
        try:
            owner_hash = owner_hash160(owner)
        except ValueError as exc:
            return ProfileVerdict(False, f"the owner address cannot be checked against a key: {exc}")
        return verify_profile_document(body, owner_hash)
