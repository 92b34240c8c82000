"""Browsers, unchanged: curl and headless Chromium open BNS names through the resolver and web gateway.

Inside a network namespace whose resolv.conf says `nameserver 127.0.0.1`:
`bns-resolver serve` on 127.0.0.1:53 with its web gateway on 127.0.0.1:80, a
stub upstream on 127.0.0.2:53, a plain HTTP server in the role of Gaia on
127.0.0.3:8999 serving profile tokens signed in this test with a real
secp256k1 key (the key that owns the test names), a site of a name with its own
A record on 127.0.0.5:80 and an ordinary forwarded site on 127.0.0.4:80.
Nothing is mocked; Chromium is Debian's, unmodified, started headless.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from coincurve import PrivateKey

from tests.e2e.gateway_env import create_netns, start_gateway, start_upstream
from tests.support.netns import NetNs, skip_or_fail, start, tail, wait_until
from tests.support.profiles import PERSON, owner_address, profile_document, sign_profile_token
from tests.support.snapshot_builder import import_export, write_export

pytestmark = pytest.mark.e2e

SERVER = ("127.0.0.1", 53)
GAIA = ("127.0.0.3", 8999)
FORWARDED = ("forwarded.example", "127.0.0.4")
OWN_SITE_ADDRESS = "127.0.0.5"
GAIA_PREFIX = "https://gaia.blockstack.org/hub/"
OWNER_KEY = PrivateKey()
STRANGER_KEY = PrivateKey()


def _zonefile(name: str, *records: str) -> str:
    return f"$ORIGIN {name}\n$TTL 3600\n" + "".join(f"{r}\n" for r in records)


def _profile_uri(path: str) -> str:
    return f'_http._tcp IN URI 10 1 "{GAIA_PREFIX}{path}"'


NAMES = {
    "alice.id": _zonefile("alice.id", _profile_uri("alice/profile.json")),
    "mallory.id": _zonefile("mallory.id", _profile_uri("mallory/profile.json")),
    "ownsite.id": _zonefile("ownsite.id", f"@ IN A {OWN_SITE_ADDRESS}"),
}


@dataclass
class Deployment:
    netns: NetNs
    base: Path

    def curl(self, url: str) -> str:
        result = self.netns.run(["curl", "-sS", "--max-time", "10", url], timeout=15)
        assert result.returncode == 0, f"curl {url}: {result.stderr}\n{tail(self.base / 'server.log')}"
        return result.stdout

    def chromium_dom(self, url: str) -> str:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            skip_or_fail("chromium is not installed (.ci/run installs Debian's chromium)")
        with tempfile.TemporaryDirectory(prefix="bns-chromium-") as profile:
            command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                       "--disable-background-networking", "--disable-component-update", "--disable-sync",
                       f"--user-data-dir={profile}", "--dump-dom", url]
            result = self.netns.run(command, timeout=60)
        assert result.returncode == 0, f"chromium {url}: {result.stderr[-2000:]}"
        return result.stdout


def _serve_files(netns: NetNs, root: Path, address: tuple[str, int], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "http.server", "--bind", address[0], "--directory", str(root), str(address[1])]
    server = start(netns, command, log)
    wait_until(lambda: netns.run(["curl", "-s", "-o", "/dev/null", f"http://{address[0]}:{address[1]}/"],
                                 timeout=5).returncode == 0, timeout=15, what=f"HTTP server on {address[0]}")
    return server


def _write(path: Path, content: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("browser")
    owner = owner_address(OWNER_KEY)
    import_export(base / "data", write_export(base / "export", NAMES, owners={n: owner for n in NAMES}))
    _write(base / "gaia/hub/alice/profile.json", profile_document(sign_profile_token(PERSON, OWNER_KEY)))
    _write(base / "gaia/hub/mallory/profile.json", profile_document(sign_profile_token(PERSON, STRANGER_KEY)))
    _write(base / "forwarded/index.html", "<html><body><p id=site>an ordinary forwarded site</p></body></html>")
    _write(base / "ownsite/index.html", "<html><body><p id=site>the name's own site</p></body></html>")
    config = base / "config.toml"
    config.write_text(f'[web]\nprofile_mirrors = {{ "{GAIA_PREFIX}" = "http://{GAIA[0]}:{GAIA[1]}/hub/" }}\n')
    netns = create_netns(SERVER[0])
    try:
        start_upstream(netns, {FORWARDED[0]: FORWARDED[1]}, base / "upstream.log")
        _serve_files(netns, base / "gaia", GAIA, base / "gaia.log")
        _serve_files(netns, base / "forwarded", (FORWARDED[1], 80), base / "forwarded.log")
        _serve_files(netns, base / "ownsite", (OWN_SITE_ADDRESS, 80), base / "ownsite.log")
        start_gateway(netns, base / "data", SERVER, base / "server.log", ready=("alice.id", "127.0.0.1"),
                      extra=["--config", str(config)])
        yield Deployment(netns, base)
    finally:
        netns.delete()


def test_curl_shows_the_verified_profile_page(deployment: Deployment) -> None:
    page = deployment.curl("http://alice.id/")
    assert "✓ Profile verified" in page and "id=zonefile-verified" in page
    assert "Alice &lt;b&gt;Example&lt;/b&gt;" in page


def test_chromium_shows_the_verified_profile_page(deployment: Deployment) -> None:
    dom = deployment.chromium_dom("http://alice.id/")
    assert 'id="profile-status"' in dom and "✓ Profile verified" in dom, dom[:3000]
    assert owner_address(OWNER_KEY) in dom
    assert "<script" not in dom


def test_chromium_never_shows_a_stranger_signed_profile_as_verified(deployment: Deployment) -> None:
    dom = deployment.chromium_dom("http://mallory.id/")
    assert "✗ Profile not verified" in dom and "does not own the name" in dom, dom[:3000]
    assert "✓ Profile verified" not in dom


def test_well_known_json_through_the_system_resolver(deployment: Deployment) -> None:
    import json

    body = json.loads(deployment.curl("http://alice.id/.well-known/bns/alice.id.json"))
    assert body["verified"] is True and body["profile"]["verified"] is True
    body = json.loads(deployment.curl("http://alice.id/.well-known/bns/mallory.id.json"))
    assert body["verified"] is True and body["profile"]["verified"] is False


def test_a_name_with_its_own_address_loads_its_own_site(deployment: Deployment) -> None:
    assert "the name's own site" in deployment.chromium_dom("http://ownsite.id/")


def test_a_forwarded_name_still_loads_its_site(deployment: Deployment) -> None:
    assert "an ordinary forwarded site" in deployment.chromium_dom(f"http://{FORWARDED[0]}/")


def test_https_port_refuses_at_once(deployment: Deployment) -> None:
    """Browsers try https:// first; a closed 443 (RST, not a silent drop) makes the fallback immediate."""
    probe = ("import socket\n"
             "address = socket.getaddrinfo('alice.id', 443, socket.AF_INET, socket.SOCK_STREAM)[0][4]\n"
             "try:\n    socket.create_connection(address, timeout=3)\n    print('open')\n"
             "except ConnectionRefusedError:\n    print('refused')\n"
             "except TimeoutError:\n    print('silent drop')\n")
    result = deployment.netns.run([sys.executable, "-c", probe], timeout=10)
    assert result.stdout.strip() == "refused", result.stdout + result.stderr
