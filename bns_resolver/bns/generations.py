"""The generations of reference code a network profile can mimic, as one object each.

BNS v1 was run by successive blockstack-core releases whose rules changed without an epoch
(the corpus pins the 2016-17 ones down; mainnet is v22).  Everything that differs between
them is a field here, so rules ask `profile.generation.<question>` and never compare the
generation's name:

* "0.14.0": Sept 2016 flat-file namedb (branch tests-0.13; the corpus's 0.13 set);
* "0.14.0-sqlite-early": Sept 2016 SQLite namedb before blockstack-core c4abd401e (692319b26 ..
  fefce0537; the corpus's 0.14 logs of 2016-08-31 .. 09-05, bns/networks.py corpus_generations);
* "0.14.0-sqlite": the same from c4abd401e on (the corpus's 0.14 logs of 2016-09-06);
* "0.14.1": Feb 2017, with epochs (the corpus's 0.14.1 set);
* "v22": v22.2.0.0, mainnet.
"""

from __future__ import annotations

from dataclasses import dataclass

from bns_resolver.errors import ConfigError


@dataclass(frozen=True)
class RuleGeneration:
    name: str
    # The flat-file namedb reloaded each block: raw owner indexes, reveal and revoke expiry
    # side effects, renewals colliding in the prescan (log_prescan_find_collisions).
    flatfile_db: bool = False
    # Pre-epoch code: renewals keep the record's op_fee, reveals need the sender's pubkey,
    # a re-reveal starts a new namespace record.
    sept2016: bool = False
    # check_register's @state_create wrapper puts a ':' renewal's name in the block's
    # collision table, so a second ':' on the name in the block collides.
    renewals_collide: bool = False
    # Before blockstack-core c4abd401e (2016-09-07) register.py's RENEWAL_MUTATE_FIELDS and
    # revoke.py's MUTATE_FIELDS listed 'sender_pubkey', and check_renewal / revoke's tx_extract
    # left the sending tx's key in the op, so a renewal or revoke stored the tx's sender key;
    # from c4abd401e on they keep the record's.
    tx_pubkey_on_renew_revoke: bool = False
    # v22: a ':' with >= 4 outputs is a NAME_RENEWAL (2016-17: a ':' without a matching
    # preorder on a registered name is re-checked as a renewal).
    renewal_by_outputs: bool = False
    # v22 operation rules (bns/rules_v22.py): token-aware preorders, value-hash and
    # pay-to-creator registrations, namespace versions 1-3 and STX namespace prices.
    v22_rules: bool = False


GENERATIONS: dict[str, RuleGeneration] = {
    g.name: g
    for g in (
        RuleGeneration("0.14.0", flatfile_db=True, sept2016=True),
        RuleGeneration("0.14.0-sqlite-early", sept2016=True, renewals_collide=True, tx_pubkey_on_renew_revoke=True),
        RuleGeneration("0.14.0-sqlite", sept2016=True, renewals_collide=True),
        RuleGeneration("0.14.1", renewals_collide=True),
        RuleGeneration("v22", renewal_by_outputs=True, v22_rules=True),
    )
}


def generation(name: str) -> RuleGeneration:
    try:
        return GENERATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown rules generation {name!r} (known: {', '.join(GENERATIONS)})") from None
