"""Build signed subdomain records and small parent chains for subdomain tests."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from coincurve import PrivateKey
from sqlalchemy.engine import Engine

from bns_resolver.hashing import hash160
from bns_resolver.index.schema import name_history, names, zonefile_wants
from bns_resolver.zonefiles.store import store_verified
from bns_resolver.zonefiles.subdomain_auth import p2pkh_address, sign_singlesig
from bns_resolver.zonefiles.subdomains import ParentZoneFile, SubdomainRecord


def key(seed: int) -> PrivateKey:
    return PrivateKey(seed.to_bytes(32, "big"))


def address(private_key: PrivateKey) -> str:
    return p2pkh_address(private_key.public_key.format())


def sub_zonefile(fqn: str, tag: str = "") -> bytes:
    return f'$ORIGIN {fqn}\n$TTL 3600\n_https._tcp URI 10 1 "https://hub.example/{fqn}/{tag}"\n'.encode()


def signed_text(*, fqn: str, domain: str, owner: str, seqn: int, zonefile: bytes) -> str:
    dummy = ParentZoneFile("00" * 20, b"", domain)
    record = SubdomainRecord(fqn, domain, owner, seqn, zonefile, None, dummy, 0)
    return record.signed_text()


def txt_line(written: str, *, owner: str, seqn: int, zonefile: bytes, sig: str | None = None) -> str:
    """A TXT record as blockstack-core's serialize_to_txt writes it (`=` in values escaped)."""
    encoded = base64.b64encode(zonefile).decode()
    pieces = [encoded[i : i + 250] for i in range(0, len(encoded), 250)]
    fields = [f"owner={owner}", f"seqn={seqn}", f"parts={len(pieces)}"]
    fields += [f"zf{i}={p}" for i, p in enumerate(pieces)]
    if sig is not None:
        fields.append(f"sig={sig}")
    quoted = " ".join('"' + f.split("=", 1)[0] + "=" + f.split("=", 1)[1].replace("=", "\\=") + '"' for f in fields)
    return f"{written} TXT {quoted}"


def update_line(
    signer: PrivateKey, written: str, *, fqn: str, domain: str, owner: str, seqn: int, zonefile: bytes
) -> str:
    """A TXT line for an update signed by `signer`."""
    text = signed_text(fqn=fqn, domain=domain, owner=owner, seqn=seqn, zonefile=zonefile)
    return txt_line(written, owner=owner, seqn=seqn, zonefile=zonefile, sig=sign_singlesig(signer, text))


def parent_zonefile(domain: str, lines: list[str], *, resolver: str | None = None) -> bytes:
    body = [f"$ORIGIN {domain}", "$TTL 3600", f'_http._tcp URI 10 1 "https://gaia.example/{domain}"']
    if resolver:
        body.append(f'_resolver URI 10 1 "{resolver}"')
    return ("\n".join(body + lines) + "\n").encode()


@dataclass
class MiniChain:
    """Names, their zone-file updates in chain order, and an Atlas-like inventory index."""

    engine: Engine
    next_inv: int = 1
    vtx: int = 0
    hashes: list[str] = field(default_factory=list)

    def update(self, domain: str, content: bytes, *, block: int, store: bool = True) -> str:
        """Record a NAME_UPDATE of `domain` to `content` at `block` (and hold the file if `store`)."""
        value_hash = hash160(content).hex()
        self.vtx += 1
        with self.engine.begin() as conn:
            if conn.execute(names.select().where(names.c.fqn == domain)).first() is None:
                conn.execute(names.insert().values(fqn=domain, namespace_id=domain.rsplit(".", 1)[1], revoked=False))
            conn.execute(names.update().where(names.c.fqn == domain).values(value_hash=value_hash))
            conn.execute(
                name_history.insert().values(
                    fqn=domain, block_height=block, vtxindex=self.vtx, opcode="+", value_hash=value_hash
                )
            )
            conn.execute(
                zonefile_wants.insert().values(
                    zonefile_hash=value_hash, first_block=block, inv_index=self.next_inv, attempts=0, next_attempt_at=0.0
                )
            )
            if store:
                store_verified(conn, value_hash, content, "test")
        self.next_inv += 1
        self.hashes.append(value_hash)
        return value_hash
