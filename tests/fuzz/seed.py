"""Write the small seed set of tests/fuzz/corpus/ (run once; the files are committed).

    PYTHONPATH=$PWD python3 -m tests.fuzz.seed
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dns.message
from coincurve import PrivateKey

from bns_resolver.index.snapshot import EMBEDDED_DIR
from tests.fuzz.targets import _SECTION_SEPARATOR
from tests.support.profiles import PERSON, profile_document, sign_profile_token

CORPUS = Path(__file__).parent / "corpus"


def _queries() -> list[bytes]:
    asks = [("_http._tcp.zone117x.id", "URI", False), ("zone117x.id", "A", True),
            ("www.mymansgotabeefy1.id.blockstack", "AAAA", True), ("nx.id", "TXT", False),
            ("example.com", "A", False), ("id", "ANY", True)]
    return [dns.message.make_query(name, rdtype, use_edns=0 if edns else None, want_dnssec=edns).to_wire()
            for name, rdtype, edns in asks]


def _zonefiles() -> list[bytes]:
    lines = (EMBEDDED_DIR / "name_zonefiles.txt").read_bytes().splitlines()
    hand = b"$ORIGIN alice.id\n$TTL 3600\n@ IN A 192.0.2.1\nwww 60 IN CNAME @\n" \
        b"@ IN TXT \"v=spf1 -all\" ( \"two\" ) ; comment\n_http._tcp IN URI 10 1 \"https://example.org/\"\n"
    return [lines[1].replace(b"\\n", b"\n"), lines[-1].replace(b"\\n", b"\n"), hand]


def _profiles() -> list[bytes]:
    key = PrivateKey(hashlib.sha256(b"fuzz seed key").digest())
    return [profile_document(sign_profile_token(PERSON, key)), b"[]", b'{"name": "not signed"}']


def _exports() -> list[bytes]:
    names = [(EMBEDDED_DIR / name).read_bytes() for name in
             ("chainstate.txt", "name_zonefiles.txt", "subdomains.csv", "subdomain_zonefiles.txt")]
    # The embedded export cut down to a few rows per file, so one import stays cheap.
    small = [b"\n".join(part.splitlines()[:12]) + b"\n" for part in names]
    return [_SECTION_SEPARATOR.join(small), small[0]]


def main() -> None:
    for target, seeds in (("query_path", _queries()), ("native_answer", _queries()), ("zonefile", _zonefiles()),
                          ("profile_token", _profiles()), ("snapshot_import", _exports())):
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (folder / f"seed-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)


if __name__ == "__main__":
    main()
