"""deploy/: the files as shipped pass their own tools where those exist, and agree with the documented install."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bns_resolver.config import load_settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "bns-resolver.service"
VENV = "/opt/bns-resolver"  # deploy/README.md's install: python3 -m venv /opt/bns-resolver


def _unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{key}=")]


def test_unit_runs_the_documented_install_sandboxed() -> None:
    """ExecStart is the venv deploy/README.md creates; no root, one capability, state in StateDirectory."""
    exec_start = _unit_values("ExecStart")[0].split()
    assert exec_start[0] == f"{VENV}/bin/bns-resolver" and exec_start[1] == "serve"
    assert f"python3 -m venv {VENV} && {VENV}/bin/pip install ." in (DEPLOY / "README.md").read_text()
    state = _unit_values("StateDirectory")[0]
    assert exec_start[exec_start.index("--data-dir") + 1] == f"/var/lib/{state}"
    assert _unit_values("DynamicUser") == ["yes"]
    assert _unit_values("AmbientCapabilities") == ["CAP_NET_BIND_SERVICE"]
    assert _unit_values("CapabilityBoundingSet") == ["CAP_NET_BIND_SERVICE"]


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit as shipped, in a scratch root holding the documented binary."""
    tool = shutil.which("systemd-analyze")
    system_units = Path("/usr/lib/systemd/system")
    if tool is None or not system_units.is_dir():
        pytest.skip("systemd-analyze is not installed")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    binary = root / _unit_values("ExecStart")[0].split()[0].lstrip("/")

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, "verify", f"--root={root}", UNIT.name], capture_output=True, text=True,
                              timeout=60, check=False)

    missing = verify()
    assert missing.returncode != 0 and "not executable" in missing.stderr  # the check can fail
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    result = verify()
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_compose_file_wires_resolver_web_gateway_and_optional_bitcoind() -> None:
    """Parse compose.yaml: ports 53/udp, 53/tcp and 80 published; bitcoind only under its profile."""
    compose = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    resolver, bitcoind = compose["services"]["resolver"], compose["services"]["bitcoind"]
    assert "profiles" not in resolver and bitcoind["profiles"] == ["bitcoind"]
    published = {port.rsplit(":", 2)[-1] for port in resolver["ports"]}
    assert published == {"53/udp", "53/tcp", "80/tcp"}
    build = resolver["build"]
    assert (DEPLOY / "docker" / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "docker" / "Dockerfile"
    mounts = dict(volume.split(":", 1) for volume in resolver["volumes"])
    assert (DEPLOY / "docker" / "config.toml").exists() and "./config.toml" in mounts
    assert set(compose["volumes"]) == {"bns-data", "bitcoin-data"}
    # Without the profile the bitcoind URL is empty, which the settings treat as "no chain sync".
    assert resolver["environment"]["BNS_RESOLVER_BITCOIND"] == "${BNS_BITCOIND_URL:-}"


def test_container_config_loads_and_matches_the_dockerfile(tmp_path: Path) -> None:
    """The container's config is valid, listens where the Dockerfile EXPOSEs, and keeps data in the VOLUME."""
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    env = {"BNS_RESOLVER_WEB_ADDRESS": "192.0.2.7", "BNS_RESOLVER_BITCOIND": ""}
    settings = load_settings(DEPLOY / "docker" / "config.toml", env=env, check_environment=False)
    assert settings.listen == (("0.0.0.0", 53),) and settings.web.listen == (("0.0.0.0", 80),)
    assert settings.web.address == "192.0.2.7" and settings.chain.bitcoind is None
    assert settings.upstreams and "0.0.0.0/0" not in settings.allow
    assert f'VOLUME ["{settings.data_dir}"]' in dockerfile
    assert re.search(r"^EXPOSE 53/udp 53/tcp 80/tcp$", dockerfile, re.M)
    assert f'ENTRYPOINT ["{VENV}/bin/bns-resolver"]' in dockerfile
    assert re.search(r"^USER bns-resolver$", dockerfile, re.M)  # never root
    for source in re.findall(r"^COPY (deploy/\S+)", dockerfile, re.M):
        assert (REPO / source).exists(), source


def test_dnsmasq_snippet_exempts_only_bns_only_namespaces() -> None:
    """rebind-domain-ok never lists `id`: that would disable rebinding protection for every .id domain."""
    snippet = (DEPLOY / "dnsmasq" / "bns-resolver.conf").read_text()
    exempted = [line for line in snippet.splitlines() if line.startswith("rebind-domain-ok=")]
    assert exempted == ["rebind-domain-ok=/helloworld/podcast/graphite/blockstack/"]
    openwrt = (DEPLOY / "openwrt" / "README.md").read_text()
    assert 'rebind_domain="$ns"' in openwrt and "for ns in helloworld podcast graphite blockstack; do" in openwrt
    dnsmasq = shutil.which("dnsmasq")
    if dnsmasq:
        checked = subprocess.run([dnsmasq, "--test", f"--conf-file={DEPLOY / 'dnsmasq' / 'bns-resolver.conf'}"],
                                 capture_output=True, text=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stderr


def test_openwrt_installs_from_the_wheel_and_the_init_script_parses() -> None:
    """No `pip3 install bns-resolver` (it is not on PyPI); the init script runs the path pip installs."""
    readme = (DEPLOY / "openwrt" / "README.md").read_text()
    assert "pip3 install bns-resolver" not in readme
    assert "python -m build --wheel" in readme and "pip3 install /tmp/bns_resolver-*.whl" in readme
    init = DEPLOY / "openwrt" / "bns-resolver.init"
    assert "PROG=/usr/bin/bns-resolver" in init.read_text()
    assert subprocess.run(["sh", "-n", str(init)], check=False).returncode == 0


def test_readme_two_commands_install_into_a_venv_and_ci_runs_them() -> None:
    """A stock Debian Python refuses `pip install .` (PEP 668): the README's first command makes a venv,
    and .ci/run executes exactly these two lines with /usr/bin/python3."""
    section = (REPO / "README.md").read_text().split("## Two commands", 1)[1]
    install, serve = section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    venv = install.split("python3 -m venv ", 1)[1].split()[0]
    assert install == f"python3 -m venv {venv} && {venv}/bin/pip install ."
    assert serve == f"{venv}/bin/bns-resolver serve"
    ci = (REPO / ".ci" / "run").read_text()
    assert "readme_line 0" in ci and "readme_line 1" in ci and "PATH=/usr/bin:/bin" in ci
    assert ci.rstrip().endswith("python3 -m pytest")  # the README's test command, last
