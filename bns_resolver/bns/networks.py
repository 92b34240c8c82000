"""Network profiles: every per-network and per-epoch knob the BNS rules read.

`mainnet()` follows blockstack-core v22.2.0.0 `lib/config.py` (epochs 1–6,
freeze at 665750).  `from_corpus_config()` maps a consensus-corpus file's
`config` (regtest, 2016/2017 reference code) to a profile, so version
differences come from data, never from scenario names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bns_resolver.bns.generations import RuleGeneration, generation
from bns_resolver.bns.genesis import GenesisAllocation, load_genesis
from bns_resolver.errors import ConfigError

FEATURE_MULTISIG = "multisig"
FEATURE_VALUE_HASH_REGISTER = "register_value_hash"  # epoch 3+
FEATURE_PAY_TO_CREATOR = "pay_to_creator"  # epoch 3+
FEATURE_TOKENS = "stacks_tokens"  # epoch 4+
FEATURE_ZERO_CH_TOKEN_TRANSFER = "token_transfer_zero_ch"  # epoch 5+

BLOCKS_PER_DAY = 144
BLOCKS_PER_YEAR = 52595
WILDCARD = "*"


# The namespaces of the BNS v1 final state, as the Stacks 2.0 migration listed them (stacks-core
# PR #2307, January 2021).
MAINNET_V1_NAMESPACES = frozenset({"app", "blockstack", "btc", "graphite", "helloworld", "id", "miner", "mining",
                                   "podcast", "stacking", "stacks", "stx"})


@dataclass(frozen=True)
class Epoch:
    """One row of the reference's EPOCHS table; end_block None = open-ended."""

    end_block: int | None
    lifetime_multiplier: tuple[tuple[str, int], ...] = ((WILDCARD, 1),)
    price_multiplier: tuple[tuple[str, float], ...] = ((WILDCARD, 1.0),)
    grace_period: int = 0
    features: frozenset[str] = frozenset()
    # Epoch 3 divides namespace prices by 10; epoch 4+ prices names as integers.
    namespace_price_divisor: int = 1
    integer_prices: bool = False

    def lookup(self, table: tuple[tuple[str, Any], ...], namespace_id: str, default: Any) -> Any:
        values = dict(table)
        # The 0.14.1 reference only listed 'id' (and 'test' in test mode); others got 1.
        return values.get(namespace_id, values.get(WILDCARD, default))


@dataclass(frozen=True)
class NetworkProfile:
    name: str
    first_block: int
    epochs: tuple[Epoch, ...]
    magic: bytes = b"id"
    p2pkh_version: int = 0
    p2sh_version: int = 5
    freeze_height: int | None = None
    import_keyring_size: int = 300
    namespace_reveal_expire: int = BLOCKS_PER_YEAR
    namespace_1char_cost: int = 40_000_000_000
    name_preorder_expire: int = BLOCKS_PER_DAY
    min_confirmations: int = 6
    genesis_consensus_hash: str = "17ac43c1d8549c3181b200f1bf97eb7d"
    # Which generation of reference code to mimic where rules changed without an epoch.
    rules: str = "v22"
    extra: tuple[tuple[str, str], ...] = field(default=())
    # Namespaces this chain is known to hold before a fresh sync has reached their reveals, so
    # their names get "not ready" rather than an upstream's false NXDOMAIN meanwhile.
    known_namespaces: frozenset[str] = frozenset()
    # The STX allocation whose accounts open at first_block (epoch 4+ ledger); None: no accounts,
    # so every STX payment and TOKEN_TRANSFER is refused, as the reference does without one.
    genesis: Callable[[], GenesisAllocation] | None = None

    def __post_init__(self) -> None:
        generation(self.rules)  # an unknown generation fails when the profile is made

    @property
    def generation(self) -> RuleGeneration:
        """The reference code generation the rules follow (bns/generations.py)."""
        return generation(self.rules)

    def epoch(self, block: int) -> Epoch:
        for epoch in self.epochs:
            if epoch.end_block is None or block <= epoch.end_block:
                return epoch
        return self.epochs[-1]

    def epoch_number(self, block: int) -> int:
        return self.epochs.index(self.epoch(block)) + 1

    def lifetime_multiplier(self, block: int, namespace_id: str) -> int:
        epoch = self.epoch(block)
        return int(epoch.lookup(epoch.lifetime_multiplier, namespace_id, 1))

    def price_multiplier(self, block: int, namespace_id: str) -> float:
        epoch = self.epoch(block)
        return float(epoch.lookup(epoch.price_multiplier, namespace_id, 1.0))

    def grace_period(self, block: int) -> int:
        return self.epoch(block).grace_period

    def has_feature(self, block: int, feature: str) -> bool:
        return feature in self.epoch(block).features

    def is_frozen(self, block: int) -> bool:
        return self.freeze_height is not None and block >= self.freeze_height


def mainnet() -> NetworkProfile:
    """blockstack-core v22.2.0.0 mainnet (bns-v1.md §2, §8)."""
    two = ((WILDCARD, 2),)
    tokens = frozenset({FEATURE_MULTISIG, FEATURE_VALUE_HASH_REGISTER, FEATURE_PAY_TO_CREATOR, FEATURE_TOKENS})
    late = tokens | {FEATURE_ZERO_CH_TOKEN_TRANSFER}
    epochs = (
        Epoch(end_block=436650),
        Epoch(end_block=488500, lifetime_multiplier=two, features=frozenset({FEATURE_MULTISIG})),
        Epoch(
            end_block=547921,
            lifetime_multiplier=two,
            price_multiplier=((WILDCARD, 0.1),),
            grace_period=5000,
            features=tokens - {FEATURE_TOKENS},
            namespace_price_divisor=10,
        ),
        Epoch(599866, two, grace_period=5000, features=tokens, integer_prices=True),
        Epoch(613249, two, grace_period=5000, features=late, integer_prices=True),
        Epoch(None, two, grace_period=5000, features=late, integer_prices=True),
    )
    return NetworkProfile(name="mainnet", first_block=373601, epochs=epochs, freeze_height=665750,
                          known_namespaces=MAINNET_V1_NAMESPACES, genesis=load_genesis)


def from_corpus_config(config: Mapping[str, Any], version: str, rules: str | None = None) -> NetworkProfile:
    """Build the regtest profile a consensus-corpus scenario ran under; `rules` picks one of
    `corpus_generations(config, version)` (default: the first)."""
    versions = config.get("address_version_bytes", {})
    constants = config.get("test_mode_constants", {})
    logged = config.get("logged_settings", {})

    def constant(key: str, default: int) -> int:
        value = logged.get(key, constants.get(key, {}).get("value", default))
        return int(value)

    if _has_epochs(config):
        epochs = _corpus_epochs(config["epochs"], logged)
    else:
        # Sept 2016 code predates epochs: one open epoch, NAMESPACE_LIFETIME_MULTIPLIER = 2 for
        # every namespace, no p2sh gate.
        epochs = (Epoch(end_block=None, lifetime_multiplier=((WILDCARD, 2),), features=frozenset({FEATURE_MULTISIG})),)
    candidates = corpus_generations(config, version)
    if rules is not None and rules not in candidates:
        raise ConfigError(f"a {version} corpus scenario ran one of {', '.join(candidates)}, not {rules!r}")
    magic_hex = config.get("magic_bytes_hex", "6964")
    if config.get("first_block") is None:
        raise ConfigError(f"corpus config of {version} has no first_block")
    return NetworkProfile(
        name=f"regtest-{version}",
        first_block=int(config["first_block"]),
        epochs=epochs,
        magic=bytes.fromhex(magic_hex),
        p2pkh_version=int(versions.get("p2pkh", 111)),
        p2sh_version=int(versions.get("p2sh", 196)),
        import_keyring_size=constant("NAME_IMPORT_KEYRING_SIZE", 5),
        namespace_reveal_expire=constant("NAMESPACE_REVEAL_EXPIRE", BLOCKS_PER_DAY),
        namespace_1char_cost=constant("NAMESPACE_1_CHAR_COST_satoshis", 40_000_000_000),
        min_confirmations=0,
        rules=rules or candidates[0],
    )


def corpus_generations(config: Mapping[str, Any], version: str) -> tuple[str, ...]:
    """The rule generations a corpus scenario of `version` may have been recorded with.

    The 0.13 set ran the flat-file namedb of branch tests-0.13 ("0.14.0") and the 0.14.1 set the
    Feb 2017 code with epochs.  The 0.14 set was run over a week of development (2016-08-31 ..
    09-06) and its logs show two revisions of the op rules: the source-line tags of their
    register/revoke/namedb debug lines are those of blockstack-core 692319b26 (sqlite3 merge) up
    to fefce0537 in the logs of 08-31 .. 09-05, and those of c4abd401e in the logs of 09-06
    (run the day before it was committed).  The two differ in one consensus rule, the sender key a
    renewal or revoke stores ("0.14.0-sqlite-early" before c4abd401e, "0.14.0-sqlite" from it on).
    Nothing in a scenario file (config, logged settings) tells the two apart, so a 0.14 scenario
    has both as candidates; c4abd401e's first, as the rule of every later release."""
    if _has_epochs(config):
        return ("0.14.1",)
    if version == "0.13":
        return ("0.14.0",)
    return ("0.14.0-sqlite", "0.14.0-sqlite-early")


def _has_epochs(config: Mapping[str, Any]) -> bool:
    return "EPOCH_1_END_BLOCK" in config.get("epochs", {})


def _corpus_epochs(table: Mapping[str, Any], logged: Mapping[str, str]) -> tuple[Epoch, ...]:
    """0.14.1 test mode: epoch params apply to 'id' and, in test mode, 'test' only."""

    def per_ns(value: Any) -> tuple[tuple[str, Any], ...]:
        return (("id", value), ("test", value))

    def setting(i: int, key: str, cast: type) -> Any:
        logged_value = logged.get(f"EPOCH_{i}_{key}_id")
        return cast(logged_value if logged_value is not None else table[f"EPOCH_{i}_{key}"])

    epochs = []
    for i, end in ((1, int(table["EPOCH_1_END_BLOCK"])), (2, None)):
        features = frozenset({FEATURE_MULTISIG}) if "BLOCKSTACK_MULTISIG" in table.get(f"EPOCH_{i}_FEATURES", []) else frozenset()
        epochs.append(
            Epoch(
                end_block=end,
                lifetime_multiplier=per_ns(setting(i, "NAMESPACE_LIFETIME_MULTIPLIER", int)),
                price_multiplier=per_ns(setting(i, "PRICE_MULTIPLIER", float)),
                features=features,
            )
        )
    return tuple(epochs)
