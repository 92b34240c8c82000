"""The web gateway over real HTTP: verified pages, JSON, status codes, escaping, profile checks."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from coincurve import PrivateKey

from tests.support.dns_fixtures import ServerProcess
from tests.support.gaia_stub import GaiaStub
from tests.support.profiles import PERSON, owner_address, profile_document, sign_profile_token
from tests.support.snapshot_builder import import_export, write_export

GAIA_PREFIX = "https://gaia.blockstack.org/hub/"


def zonefile(name: str, profile_path: str | None) -> str:
    text = f"$ORIGIN {name}\n$TTL 3600\n"
    if profile_path:
        text += f'_http._tcp\tIN\tURI\t10\t1\t"{GAIA_PREFIX}{profile_path}"\n'
    return text


@dataclass
class Gateway:
    server: ServerProcess
    gaia: GaiaStub

    def get(self, host: str, path: str = "/") -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.server.web_port()}{path}", headers={"Host": host})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def json(self, name: str) -> tuple[int, dict]:
        status, _headers, body = self.get("anything", f"/.well-known/bns/{name}.json")
        return status, json.loads(body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


OWNER_KEY = PrivateKey()
STRANGER_KEY = PrivateKey()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("web")
    gaia = GaiaStub().start()
    owner = owner_address(OWNER_KEY)
    hostile = dict(PERSON, name='<script>alert(1)</script>"><img src=x onerror=alert(2)>',
                   website=[{"url": "javascript:alert(3)"}])
    gaia.files = {
        "/hub/alice/profile.json": profile_document(sign_profile_token(PERSON, OWNER_KEY)),
        "/hub/mallory/profile.json": profile_document(sign_profile_token(PERSON, STRANGER_KEY)),
        "/hub/hostile/profile.json": profile_document(sign_profile_token(hostile, OWNER_KEY)),
    }
    names = {"alice.id": zonefile("alice.id", "alice/profile.json"),
             "mallory.id": zonefile("mallory.id", "mallory/profile.json"),
             "hostile.id": zonefile("hostile.id", "hostile/profile.json"),
             "gone.id": zonefile("gone.id", "gone/profile.json"),
             "plain.id": zonefile("plain.id", None), "bare.id": None,
             "missing.id": zonefile("missing.id", "missing/profile.json")}
    export = write_export(tmp / "export", names, owners={name: owner for name in names},
                          withheld=frozenset({"missing.id"}))
    import_export(tmp / "data", export)
    config = (f'[web]\nlisten = ["127.0.0.1:0"]\n'
              f'profile_mirrors = {{ "{GAIA_PREFIX}" = "{gaia.base_url}/hub/" }}\n')
    server = ServerProcess(tmp / "data", config=config).start()
    yield Gateway(server, gaia)
    server.stop()
    gaia.stop()


def test_a_verified_name_with_an_owner_signed_profile(gateway: Gateway) -> None:
    status, headers, page = gateway.get("alice.id")
    assert status == 200
    assert "✓ Profile verified" in page and "id=zonefile-verified" in page
    assert "Alice &lt;b&gt;Example&lt;/b&gt;" in page  # the claim's name, escaped
    assert owner_address(OWNER_KEY) in page
    assert 'href="https://alice.example.org/"' in page  # the verified profile's website, as a link
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none' covers scripts
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert gateway.get("www.alice.id")[0] == 200


def test_well_known_json_reports_both_verdicts(gateway: Gateway) -> None:
    status, body = gateway.json("alice.id")
    assert status == 200 and body["verified"] is True and body["owner"] == owner_address(OWNER_KEY)
    assert body["profile"]["verified"] is True and body["profile"]["claim"]["name"] == PERSON["name"]
    assert body["zonefile_hash"] and body["binding"]["source"] == "export"
    status, body = gateway.json("mallory.id")
    assert status == 200 and body["verified"] is True
    assert body["profile"]["verified"] is False and "does not own the name" in body["profile"]["reason"]


def test_a_profile_signed_by_another_key_is_shown_as_not_verified(gateway: Gateway) -> None:
    status, _headers, page = gateway.get("mallory.id")
    assert status == 200
    assert "✗ Profile not verified" in page and "✓ Profile verified" not in page


def test_hostile_profile_text_is_escaped_and_never_linked(gateway: Gateway) -> None:
    status, _headers, page = gateway.get("hostile.id")
    assert status == 200 and "✓ Profile verified" in page
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page


def test_unreachable_profile_is_a_200_page_with_the_reason(gateway: Gateway) -> None:
    status, _headers, page = gateway.get("gone.id")
    assert status == 200 and "profile not fetched: storage answered HTTP 404" in page
    _status, body = gateway.json("gone.id")
    assert body["profile"]["verified"] is False and "404" in body["profile"]["reason"]


def test_names_without_profile_or_zone_file_still_get_a_page(gateway: Gateway) -> None:
    for name in ("plain.id", "bare.id"):
        status, _headers, page = gateway.get(name)
        assert status == 200 and "names no profile" in page and owner_address(OWNER_KEY) in page


def test_a_name_whose_zone_file_cannot_be_verified_now_is_503_with_the_reason(gateway: Gateway) -> None:
    status, _headers, page = gateway.get("missing.id")
    assert status == 503 and "not obtained yet" in page
    status, body = gateway.json("missing.id")
    assert status == 503 and body["verified"] is False and body["ede"] == 22
    assert gateway.server.query("missing.id", "A").rcode() == 2  # SERVFAIL: no address for an unverified name


def test_unknown_names_are_404(gateway: Gateway) -> None:
    assert gateway.get("nosuch.id")[0] == 404
    assert gateway.get("example.com")[0] == 404
    assert gateway.get("deep.alice.id")[0] == 404
    assert gateway.json("nosuch.id")[0] == 404


def test_profiles_are_cached(gateway: Gateway) -> None:
    before = gateway.gaia.requests["/hub/alice/profile.json"]
    for _ in range(3):
        assert gateway.get("alice.id")[0] == 200
    assert gateway.gaia.requests["/hub/alice/profile.json"] == max(before, 1)


def test_health(gateway: Gateway) -> None:
    status, _headers, body = gateway.get("x", "/healthz")
    assert status == 200 and json.loads(body)["ready"] is True


def test_redirect_to_website(tmp_path: Path) -> None:
    gaia = GaiaStub().start()
    gaia.files["/hub/alice/profile.json"] = profile_document(sign_profile_token(PERSON, OWNER_KEY))
    export = write_export(tmp_path / "export", {"alice.id": zonefile("alice.id", "alice/profile.json")},
                          owners={"alice.id": owner_address(OWNER_KEY)})
    import_export(tmp_path / "data", export)
    config = (f'[web]\nlisten = ["127.0.0.1:0"]\nredirect_to_website = true\n'
              f'profile_mirrors = {{ "{GAIA_PREFIX}" = "{gaia.base_url}/hub/" }}\n')
    server = ServerProcess(tmp_path / "data", config=config).start()
    try:
        status, headers, _page = Gateway(server, gaia).get("alice.id")
        assert status == 302 and headers["Location"] == "https://alice.example.org/"
    finally:
        server.stop()
        gaia.stop()


def test_storage_limits_size_time_and_private_addresses(tmp_path: Path) -> None:
    gaia = GaiaStub().start()
    gaia.files["/hub/big/profile.json"] = b"[" + b" " * 5000 + b"]"
    gaia.files["/hub/slow/profile.json"] = profile_document(sign_profile_token(PERSON, OWNER_KEY))
    names = {"big.id": zonefile("big.id", "big/profile.json"), "slow.id": zonefile("slow.id", "slow/profile.json"),
             "lan.id": '$ORIGIN lan.id\n_http._tcp IN URI 10 1 "http://192.168.1.1/admin"\n'}
    export = write_export(tmp_path / "export", names, owners={n: owner_address(OWNER_KEY) for n in names})
    import_export(tmp_path / "data", export)
    config = (f'[web]\nlisten = ["127.0.0.1:0"]\nprofile_max_bytes = 1000\nprofile_timeout = 1.0\n'
              f'profile_mirrors = {{ "{GAIA_PREFIX}" = "{gaia.base_url}/hub/" }}\n')
    server = ServerProcess(tmp_path / "data", config=config).start()
    try:
        gateway = Gateway(server, gaia)
        assert "larger than 1000 bytes" in gateway.json("big.id")[1]["profile"]["reason"]
        gaia.delay = 3.0
        assert "did not answer in time" in gateway.json("slow.id")[1]["profile"]["reason"]
        assert "non-public address" in gateway.json("lan.id")[1]["profile"]["reason"]
    finally:
        server.stop()
        gaia.stop()


def test_metrics_count_what_happened(gateway: Gateway) -> None:
    gateway.server.query("alice.id", "A")
    gateway.get("alice.id")
    status, headers, text = gateway.get("x", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if not line.startswith("#")}
    assert values["bns_dns_queries_total"] >= 1
    assert values["bns_index_ready"] == 1 and values["bns_index_height"] == 665750
    assert values["bns_web_profile_fetches_total"] >= 1
    assert 'bns_dns_cache_entries{cache="answers"}' in values


def test_clients_outside_the_allow_list_get_403(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra=["--allow", "10.0.0.0/8"]).start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{server.web_port()}/", headers={"Host": "zone117x.id"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403 and "allow-list" in refused.value.read().decode()
    finally:
        server.stop()


def test_a_cached_page_never_outlives_an_index_change(tmp_path: Path) -> None:
    import time

    names = {"alice.id": zonefile("alice.id", None)}
    first, second = owner_address(OWNER_KEY), owner_address(STRANGER_KEY)
    import_export(tmp_path / "data", write_export(tmp_path / "one", names, owners={"alice.id": first}))
    server = ServerProcess(tmp_path / "data", config='[web]\nlisten = ["127.0.0.1:0"]\n').start()
    try:
        gateway = Gateway(server, GaiaStub().start())
        assert first in gateway.get("alice.id")[2] and first in gateway.get("alice.id")[2]  # rendered, then cached
        import_export(tmp_path / "data", write_export(tmp_path / "two", names, owners={"alice.id": second}))
        deadline = time.monotonic() + 15
        while first in gateway.get("alice.id")[2] and time.monotonic() < deadline:
            time.sleep(0.1)
        page = gateway.get("alice.id")[2]
        assert second in page and first not in page
    finally:
        server.stop()
        gateway.gaia.stop()
