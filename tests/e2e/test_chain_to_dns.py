"""Issue 4 acceptance: a regtest chain of real BNS transactions, synced through bitcoind RPC
by `bns-resolver sync`, answers over DNS from verified zone files.

The chain (tests/support/bns_scenarios.py `build_scenario`, default regtest profile: v22 rules,
first block 256, epoch 1) launches the namespace `e2etests` and then:

* alice, bob, carol, erin: preordered, registered and updated with zone-file hashes;
* bob is transferred to dave keeping his zone file; carol is revoked;
* erin's zone file is withheld from the zone-file folder; frank's is there under his hash,
  but with other records (a forgery the fetcher must refuse);
* rejected: `cheap` (preorder underpaid), `orphan` (registration without preorder),
  `stale` (preorder quoting a consensus hash older than 24 blocks), mallory's update,
  revoke and transfer of names she does not own, and bob's update after his transfer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from tests.support.bitcoind import BitcoindServer
from tests.support.bns_ops import BnsChain, address, preorder, register, replay
from tests.support.bns_scenarios import NAMESPACE, Scenario, build_scenario, launch_namespace
from tests.support.index_cli import SERVE_CONFIG, cli, sync_args, write_config
from tests.support.dns_fixtures import ServerProcess

pytestmark = pytest.mark.timeout(120)


@dataclass
class Synced:
    scenario: Scenario
    data_dir: Path
    sync_stdout: str


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    root = tmp_path_factory.mktemp("chain-to-dns")
    scenario = build_scenario()
    folder = scenario.write_zonefiles(root / "zonefiles")
    config = write_config(root / "sync.toml")
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(scenario.chain.chain)
        result = cli(*sync_args(node.url, root / "data", config, folder))
    assert result.returncode == 0, result.stderr
    yield Synced(scenario, root / "data", result.stdout)


@pytest.fixture(scope="module")
def server(synced: Synced) -> Iterator[ServerProcess]:
    process = ServerProcess(synced.data_dir, config=SERVE_CONFIG.format(namespace=NAMESPACE)).start()
    yield process
    process.stop()


def _records(reply: dns.message.Message, rdtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in reply.answer if rrset.rdtype == wanted for rd in rrset)


def _ede_codes(reply: dns.message.Message) -> list[int]:
    return [opt.code for opt in reply.options if isinstance(opt, dns.edns.EDEOption)]


def test_reference_engine_saw_the_scenario_it_was_built_for(synced: Synced) -> None:
    """The in-memory engine that quoted consensus hashes accepted exactly the intended ops."""
    chain = synced.scenario.chain
    accepted = [op for height in sorted(chain.outcomes) for op in chain.accepted(height)]
    names = {name for opcode, name in accepted if opcode == "NAME_REGISTRATION"}
    assert names == {f"{label}.{NAMESPACE}" for label in ("alice", "bob", "carol", "erin", "frank")}
    assert [n for op, n in accepted if op == "NAME_TRANSFER"] == [f"bob.{NAMESPACE}"]
    assert [n for op, n in accepted if op == "NAME_REVOKE"] == [f"carol.{NAMESPACE}"]
    assert len([op for op, _ in accepted if op == "NAME_UPDATE"]) == 5
    assert len([op for op, _ in accepted if op == "NAME_PREORDER"]) == 6  # `stale` was refused


def test_sync_fetched_the_zone_files_from_the_folder(synced: Synced) -> None:
    """Sync stored alice's and bob's zone files, refused frank's forgery, and reports erin's
    (withheld) and frank's as still missing."""
    assert "zone files: 2 fetched and verified, 1 rejected, 2 still missing" in synced.sync_stdout, \
        synced.sync_stdout


def test_status_matches_an_in_memory_replay(synced: Synced) -> None:
    """`status --json` reports the height and consensus hash a fresh in-memory replay computes."""
    _, outcomes = replay(synced.scenario.chain.blocks)
    status = json.loads(cli("status", "--json", "--data-dir", str(synced.data_dir)).stdout)
    assert status["source"] == "chain" and status["network"] == "regtest"
    assert status["height"] == outcomes[-1].height == synced.scenario.chain.height
    assert status["consensus_hash"] == outcomes[-1].consensus_hash
    assert status["namespace_ids"] == [NAMESPACE]
    assert status["names"] == 5 and status["zonefiles"] == 2


def test_updated_names_answer_from_their_zone_files(server: ServerProcess) -> None:
    """alice's A, URI, TXT and www A come back authoritative, from her verified zone file."""
    reply = server.query(f"alice.{NAMESPACE}.", "A")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert _records(reply, "A") == ["192.0.2.1"]
    assert _records(server.query(f"alice.{NAMESPACE}.", "URI"), "URI") == ['10 1 "https://alice.example/"']
    assert _records(server.query(f"alice.{NAMESPACE}.", "TXT"), "TXT") == ['"hello from alice"']
    assert _records(server.query(f"www.alice.{NAMESPACE}.", "A"), "A") == ["192.0.2.11"]


def test_transferred_name_keeps_answering_with_its_value(server: ServerProcess) -> None:
    """bob, transferred to dave with `>` (keep value), answers his own records, not mallory's."""
    reply = server.query(f"bob.{NAMESPACE}.", "A")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert _records(reply, "A") == ["192.0.2.2"]
    assert _records(server.query(f"bob.{NAMESPACE}.", "URI"), "URI") == ['10 1 "https://bob.example/"']


@pytest.mark.parametrize("label", ["carol", "cheap", "orphan", "stale"])
def test_revoked_and_rejected_names_do_not_exist(server: ServerProcess, label: str) -> None:
    """The revoked name and the names of rejected registrations are NXDOMAIN."""
    reply = server.query(f"{label}.{NAMESPACE}.", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AA
    assert reply.answer == []


@pytest.mark.parametrize("label", ["erin", "frank"])
def test_name_without_a_verified_zone_file_is_servfail_with_ede_22(server: ServerProcess, label: str) -> None:
    """erin's zone file is not in the folder, frank's does not hash to his value hash:
    SERVFAIL with EDE 22 (No Reachable Authority), never the forged records."""
    reply = server.query(f"{label}.{NAMESPACE}.", "A", use_edns=0)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert _ede_codes(reply) == [22]
    assert reply.answer == []


def test_alice_survives_mallorys_revoke_and_transfer(synced: Synced, server: ServerProcess) -> None:
    """Non-owner revoke/transfer attempts left alice with her owner and records."""
    looked = cli("lookup", f"alice.{NAMESPACE}", "--data-dir", str(synced.data_dir))
    assert looked.returncode == 0, looked.stdout + looked.stderr
    assert address(synced.scenario.wallets["alice"]) in looked.stdout
    assert address(synced.scenario.wallets["mallory"]) not in looked.stdout
    assert _records(server.query(f"alice.{NAMESPACE}.", "A"), "A") == ["192.0.2.1"]


def test_a_preorder_older_than_the_namespace_lifetime_cannot_register(tmp_path: Path) -> None:
    """v22 namedb.get_name_preorder: a preorder is "too old" once preorder block + lifetime <=
    the previous block; registering at preorder block + lifetime still works, one block later not."""
    lifetime = 12
    chain = BnsChain()
    launch_namespace(chain, "shortlife", {"lifetime": lifetime})
    ontime, late = chain.wallet("ontime"), chain.wallet("late")
    chain.mine()
    preorder(chain, ontime, "ontime.shortlife")
    preorder(chain, late, "late.shortlife")
    preorder_block = chain.mine()[0].height
    chain.mine_to(preorder_block + lifetime - 1)
    register(chain, ontime, "ontime.shortlife")
    assert chain.mine()[0].height == preorder_block + lifetime
    register(chain, late, "late.shortlife")
    assert chain.mine()[0].height == preorder_block + lifetime + 1
    assert chain.accepted(preorder_block + lifetime) == [("NAME_REGISTRATION", "ontime.shortlife")]
    assert chain.accepted(preorder_block + lifetime + 1) == []

    config = write_config(tmp_path / "sync.toml")
    with BitcoindServer(chain="regtest") as node:
        node.serve_builder(chain.chain)
        synced = cli(*sync_args(node.url, tmp_path / "data", config))
    assert synced.returncode == 0, synced.stderr
    assert cli("lookup", "ontime.shortlife", "--data-dir", str(tmp_path / "data")).returncode == 0
    assert cli("lookup", "late.shortlife", "--data-dir", str(tmp_path / "data")).returncode == 1
