"""`bns-resolver integrate`: each snippet passes its own tool's checker and routes every namespace."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bns_resolver.config import load_settings
from bns_resolver.index.db import open_index
from bns_resolver.index.lookup import IndexReader
from bns_resolver.index.snapshot import EMBEDDED_DIR, ExportFiles, import_export
from bns_resolver.integrate import gather, render

NAMESPACES = ("blockstack", "graphite", "helloworld", "id", "podcast")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> IndexReader:
    engine = open_index(f"sqlite:///{tmp_path_factory.mktemp('integrate') / 'index.sqlite'}")
    import_export(engine, ExportFiles.open(EMBEDDED_DIR))
    return IndexReader(engine)


def _snippet(index: IndexReader, tool: str, tlds: dict[str, bool | None]) -> str:
    settings = load_settings(None, env={})
    return render(tool, gather(index, settings, lambda tld: tlds.get(tld)))


def _checked(tool: str, command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (.ci/run installs it)")
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("tool", ["dnsmasq", "pihole"])
def test_dnsmasq_snippets_pass_dnsmasq_test(index: IndexReader, tool: str, tmp_path: Path) -> None:
    text = _snippet(index, tool, {"id": True, "helloworld": False})
    for ns in NAMESPACES:
        assert f"server=/{ns}/127.0.0.1#5354" in text
    assert "rebind-domain-ok=/helloworld/" in text  # BNS-only: exempted whole
    assert "rebind-domain-ok=/id/" not in text  # shared: never the whole TLD
    assert "rebind-domain-ok=/zone117x.id/" in text and "rebind-domain-ok=/id.blockstack/" in text
    path = tmp_path / "snippet.conf"
    path.write_text(text)
    _checked(tool, ["dnsmasq", "--test", f"--conf-file={path}"])


def test_unbound_snippet_passes_unbound_checkconf(index: IndexReader, tmp_path: Path) -> None:
    text = _snippet(index, "unbound", {"id": True, "helloworld": False})
    snippet = tmp_path / "bns.conf"
    snippet.write_text(text)
    config = tmp_path / "unbound.conf"
    config.write_text(f'server:\n    username: ""\n    chroot: ""\n    directory: "{tmp_path}"\ninclude: "{snippet}"\n')
    _checked("unbound", ["unbound-checkconf", str(config)])
    id_zone = text.split('name: "id."')[1].split("forward-zone:")[0]
    assert "forward-first: yes" in id_zone
    hello_zone = text.split('name: "helloworld."')[1].split("forward-zone:")[0]
    assert "forward-first" not in hello_zone
    assert all(f'domain-insecure: "{ns}"' in text for ns in NAMESPACES)


def test_resolved_snippet_routes_only_the_namespaces(index: IndexReader) -> None:
    parser = configparser.ConfigParser()
    parser.read_string(_snippet(index, "resolved", {}))
    assert parser["Resolve"]["DNS"] == "127.0.0.1:5354"
    assert parser["Resolve"]["Domains"].split() == [f"~{ns}" for ns in NAMESPACES]


def test_unknown_tld_status_is_treated_as_shared_and_said(index: IndexReader) -> None:
    text = _snippet(index, "dnsmasq", {})
    assert "may be an ICANN TLD" in text and "rebind-domain-ok=/helloworld/" not in text


def test_cli_prints_a_snippet_for_the_embedded_snapshot(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bns_resolver.cli", "integrate", "dnsmasq", "--data-dir",
                             str(tmp_path / "data"), "--upstream", "127.0.0.1:9", "--listen", "192.168.1.1:53"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "server=/id/192.168.1.1#53" in result.stdout
