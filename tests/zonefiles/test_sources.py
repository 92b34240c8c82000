from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bns_resolver.errors import ConfigError
from bns_resolver.zonefiles.sources import (
    AtlasSource,
    DirSource,
    HttpSource,
    SourceUnavailable,
    ZoneFileWant,
    build_sources,
    parse_source_spec,
)
from tests.support.zonefile_servers import AtlasStub, ZonefileHttpMirror

H1 = "c5f5b4197c94d4561f6332160f624d728b0da8bf"
H2 = "8961c32ad98df87af12b186c3d0be6ca22105936"
FILES = {H1: b"$ORIGIN 0.id\nfile one\n", H2: b"$ORIGIN 1.id\nfile two\n"}


def test_parse_specs_build_each_kind(tmp_path: Path) -> None:
    """dir:, http(s):// and atlas:// specs build the matching source, in the order given."""
    sources = build_sources([f"dir:{tmp_path}", "https://m.example/zf/{hash}", "atlas://node.example:6264"])
    assert [type(s) for s in sources] == [DirSource, HttpSource, AtlasSource]
    assert [s.label for s in sources] == [f"dir:{tmp_path}", "https://m.example/zf/{hash}", "atlas://node.example:6264"]


def test_atlas_spec_defaults_to_port_6264() -> None:
    """An atlas spec without a port uses Atlas's default RPC port."""
    source = parse_source_spec("atlas://node.blockstack.org")
    assert isinstance(source, AtlasSource) and source.port == 6264


@pytest.mark.parametrize("spec", ["ftp://x/{hash}", "http://x/static", "atlas://host:99999", "dir:/no/such/dir", "x"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    """Unknown schemes, templates without placeholders, bad ports and missing dirs are ConfigErrors."""
    with pytest.raises(ConfigError):
        parse_source_spec(spec)


def test_dir_source_flat_layout(tmp_path: Path) -> None:
    """A flat folder serves `<hash>.txt` and extension-less `<hash>` files; others are absent."""
    (tmp_path / f"{H1}.txt").write_bytes(FILES[H1])
    (tmp_path / H2).write_bytes(FILES[H2])
    found = DirSource(tmp_path).fetch([ZoneFileWant(H1), ZoneFileWant(H2), ZoneFileWant("f" * 40)], timeout=1)
    assert found == FILES


def test_dir_source_atlas_layout(tmp_path: Path) -> None:
    """Atlas's `ab/cd/<hash>.txt` tree is found."""
    nested = tmp_path / H1[:2] / H1[2:4]
    nested.mkdir(parents=True)
    (nested / f"{H1}.txt").write_bytes(FILES[H1])
    assert DirSource(tmp_path).fetch([ZoneFileWant(H1)], timeout=1) == {H1: FILES[H1]}


def test_dir_source_ignores_path_like_hashes(tmp_path: Path) -> None:
    """A 'hash' that is not 40 hex digits never becomes a path."""
    (tmp_path / "secret.txt").write_bytes(b"x")
    assert DirSource(tmp_path).fetch([ZoneFileWant("../secret"), ZoneFileWant("secret")], timeout=1) == {}


def test_http_source_fetches_batch_over_one_server() -> None:
    """A good mirror serves known hashes; unknown hashes (404) are simply absent."""
    with ZonefileHttpMirror(FILES) as mirror:
        found = HttpSource(mirror.template()).fetch([ZoneFileWant(H1), ZoneFileWant("e" * 40), ZoneFileWant(H2)], timeout=5)
    assert found == FILES
    assert len(mirror.requests) == 3


def test_http_source_name_template() -> None:
    """`{name}` is filled from the want; wants without a name are skipped, not requested."""
    with ZonefileHttpMirror({f"muneeb.id/{H1}": FILES[H1]}) as mirror:
        source = HttpSource(mirror.template("{name}/{hash}"))
        found = source.fetch([ZoneFileWant(H1, "muneeb.id"), ZoneFileWant(H2)], timeout=5)
    assert found == {H1: FILES[H1]}
    assert mirror.requests == [f"/zonefiles/muneeb.id/{H1}"]


def test_http_source_server_error_is_unavailable() -> None:
    """HTTP 500 makes the source unavailable for the batch."""
    with ZonefileHttpMirror(FILES, mode="error") as mirror:
        with pytest.raises(SourceUnavailable, match="500"):
            HttpSource(mirror.template()).fetch([ZoneFileWant(H1)], timeout=5)


def test_http_source_slow_server_times_out() -> None:
    """A server that does not answer within the timeout raises SourceUnavailable."""
    with ZonefileHttpMirror(FILES, mode="slow") as mirror:
        with pytest.raises(SourceUnavailable, match="(?i)timed out|timeout"):
            HttpSource(mirror.template()).fetch([ZoneFileWant(H1)], timeout=0.3)


def test_http_source_dead_server_is_unavailable() -> None:
    """Connection refused (nothing listening) raises SourceUnavailable."""
    with ZonefileHttpMirror(FILES) as mirror:
        template = mirror.template()
    with pytest.raises(SourceUnavailable):
        HttpSource(template).fetch([ZoneFileWant(H1)], timeout=2)


def test_atlas_source_get_zonefiles() -> None:
    """The Atlas client sends one get_zonefiles call per batch and decodes the base64 map."""
    with AtlasStub(FILES) as stub:
        found = AtlasSource("127.0.0.1", stub.port).fetch([ZoneFileWant(H1), ZoneFileWant("d" * 40)], timeout=5)
    assert found == {H1: FILES[H1]}
    assert stub.calls == [[H1, "d" * 40]]


def test_atlas_source_error_reply_is_unavailable() -> None:
    """An `{"error": …}` reply (e.g. more than 100 hashes) makes the source unavailable."""
    source = AtlasSource("127.0.0.1", 1)
    with pytest.raises(SourceUnavailable, match="Too many"):
        source._decode_reply('{"error": "Too many requests", "http_status": 400}', set())


def test_atlas_source_accepts_legacy_dict_reply_and_ignores_unasked() -> None:
    """Old nodes returned the dict itself; hashes we did not ask for are dropped."""
    source = AtlasSource("127.0.0.1", 1)
    reply = {"status": True, "zonefiles": {H1: base64.b64encode(FILES[H1]).decode(), H2: "eA=="}}
    assert source._decode_reply(reply, {H1}) == {H1: FILES[H1]}


def test_atlas_source_dead_peer_is_unavailable() -> None:
    """A peer that refuses connections raises SourceUnavailable."""
    with AtlasStub(FILES) as stub:
        port = stub.port
    with pytest.raises(SourceUnavailable):
        AtlasSource("127.0.0.1", port).fetch([ZoneFileWant(H1)], timeout=2)


def test_atlas_reply_size_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply larger than the cap is refused instead of being read into memory."""
    from bns_resolver.zonefiles import sources

    monkeypatch.setattr(sources._TimeoutTransport, "MAX_REPLY_BYTES", 100)
    with AtlasStub(FILES) as stub:
        with pytest.raises(SourceUnavailable, match="over 100 bytes"):
            AtlasSource("127.0.0.1", stub.port).fetch([ZoneFileWant(H1), ZoneFileWant(H2)], timeout=5)
