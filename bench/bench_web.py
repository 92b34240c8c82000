"""Blockstack's "comparable performance", end to end: a BNS name's page vs an ordinary site.

In one network namespace and one run, alternating:
  BNS   resolv.conf -> bns-resolver on 127.0.0.1:53, web gateway 127.0.0.1:80, profiles from a
        local Gaia stand-in (python http.server on 127.0.0.3:8999) signed with real keys.
        cold: the name's first visit (DNS miss, profile fetch and signature check);
        warm: the same name again (resolver and profile caches warm).
  ICANN resolv.conf -> Unbound on 127.0.0.53:53 (local-data), the same page bytes from a plain
        python http.server on 127.0.0.2:80 under `ordinary.test`.
Each load is a fresh headless Chromium (its own DNS cache empty), timed by Navigation Timing
over DevTools (bench/cdp_navigate.py), and a curl of the same URL. Medians over --reps.
Needs root, iproute2, unbound, chromium, curl and `pip install websocket-client`.

    python bench/bench_web.py --reps 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coincurve import PrivateKey  # noqa: E402

from tests.support.netns import NetNs, wait_until  # noqa: E402
from tests.support.profiles import PERSON, owner_address, profile_document, sign_profile_token  # noqa: E402
from tests.support.snapshot_builder import import_export, write_export  # noqa: E402

GAIA = "127.0.0.3:8999"
GAIA_PREFIX = "https://gaia.blockstack.org/hub/"
UNBOUND = "127.0.0.53"
# A name under a real TLD, like the BNS names: Chromium tries https:// first only for such names
# (not for reserved ones such as .test), so both sides pay the same HTTPS-upgrade attempt.
ORDINARY = ("ordinary.example.org", "127.0.0.2")
CURL_FORMAT = '{"dns": %{time_namelookup}, "connect": %{time_connect}, "ttfb": %{time_starttransfer}, ' \
              '"total": %{time_total}, "status": %{http_code}}'


def prepare(base: Path, reps: int) -> list[str]:
    key = PrivateKey()
    names = [f"bench{i}.id" for i in range(reps)] + ["template.id"]
    zonefiles = {n: f'$ORIGIN {n}\n$TTL 3600\n_http._tcp IN URI 10 1 "{GAIA_PREFIX}{n}/profile.json"\n'
                 for n in names}
    import_export(base / "data", write_export(base / "export", zonefiles,
                                              owners={n: owner_address(key) for n in names}))
    for name in names:
        path = base / "gaia" / "hub" / name / "profile.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(profile_document(sign_profile_token(PERSON, key)))
    (base / "config.toml").write_text(
        f'[web]\nprofile_mirrors = {{ "{GAIA_PREFIX}" = "http://{GAIA}/hub/" }}\n')
    (base / "unbound.conf").write_text(
        f'server:\n interface: {UNBOUND}\n port: 53\n do-daemonize: no\n use-syslog: no\n username: ""\n'
        f' chroot: ""\n directory: "{base}"\n pidfile: ""\n module-config: "iterator"\n'
        f' local-zone: "example.org." static\n local-data: "{ORDINARY[0]}. 300 IN A {ORDINARY[1]}"\n')
    return names[:-1]


def start(netns: NetNs, base: Path) -> None:
    log = (base / "server.log").open("wb")
    server = ["bns-resolver", "serve", "--data-dir", str(base / "data"), "--listen", "127.0.0.1:53",
              "--upstream", f"{UNBOUND}:53", "--config", str(base / "config.toml"), "--log-level", "WARNING"]
    # Unbound first: it is also our upstream, so both sides answer the browser's own lookups alike.
    netns.popen(["unbound", "-d", "-c", str(base / "unbound.conf")], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    netns.popen([sys.executable, "-m", "bns_resolver.cli", *server[1:]], stdout=log, stderr=subprocess.STDOUT)
    netns.popen([sys.executable, "-m", "http.server", "--bind", GAIA.split(":")[0], "--directory",
                 str(base / "gaia"), GAIA.split(":")[1]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: netns.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1/healthz"]).returncode == 0,
               timeout=30, what="web gateway")
    # The ordinary site serves the very bytes of a BNS page (one not measured).
    page = netns.run(["curl", "-sf", "-H", "Host: template.id", "http://127.0.0.1/"]).stdout
    (base / "ordinary").mkdir()
    (base / "ordinary" / "index.html").write_text(page)
    netns.popen([sys.executable, "-m", "http.server", "--bind", ORDINARY[1], "--directory", str(base / "ordinary"),
                 "80"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: netns.run(["curl", "-sf", "-o", "/dev/null", f"http://{ORDINARY[1]}/"]).returncode == 0,
               timeout=15, what="ordinary site")


def use_resolver(netns: NetNs, address: str) -> None:
    (netns.etc / "resolv.conf").write_text(f"nameserver {address}\noptions timeout:2 attempts:2\n")


def chromium(netns: NetNs, url: str) -> dict:
    result = netns.run([sys.executable, str(REPO / "bench" / "cdp_navigate.py"), url], timeout=90)
    if result.returncode != 0:
        raise SystemExit(f"navigation to {url} failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def curl(netns: NetNs, url: str) -> dict:
    result = netns.run(["curl", "-s", "-o", "/dev/null", "-w", CURL_FORMAT, url], timeout=30)
    return {k: v * 1000 if k != "status" else v for k, v in json.loads(result.stdout).items()}


def measure(netns: NetNs, names: list[str]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}

    def record(case: str, value: dict) -> None:
        runs.setdefault(case, []).append(value)

    gaia_url = f"http://{GAIA}/hub/{names[0]}/profile.json"
    for index, name in enumerate(names):
        order = ("bns", "icann") if index % 2 == 0 else ("icann", "bns")
        for side in order:
            if side == "bns":
                use_resolver(netns, "127.0.0.1")
                record("chromium bns cold", chromium(netns, f"http://{name}/"))
                record("chromium bns warm", chromium(netns, f"http://{name}/"))
                record("curl bns warm", curl(netns, f"http://{name}/"))
            else:
                use_resolver(netns, UNBOUND)
                record("chromium ordinary", chromium(netns, f"http://{ORDINARY[0]}/"))
                record("curl ordinary", curl(netns, f"http://{ORDINARY[0]}/"))
        record("curl profile fetch", curl(netns, gaia_url))
    return runs


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    keys = ("dom", "dns", "connect", "ttfb", "load", "wall", "total")
    return {case: {k: round(statistics.median(r[k] for r in rows), 2) for k in keys if k in rows[0]}
            for case, rows in runs.items()}


def report(summary: dict[str, dict[str, float]], reps: int) -> str:
    lines = [f"| case (median of {reps}) | before DNS ms | DNS ms | connect ms | TTFB ms | load ms | wall ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for case, values in summary.items():
        load = values.get("load", values.get("total"))
        lines.append(f"| {case} | {values.get('dom', '')} | {values['dns']} | {values['connect']} | {values['ttfb']} "
                     f"| {load} | {values.get('wall', '')} |")
    ordinary = summary["chromium ordinary"]["load"]
    warm, cold = summary["chromium bns warm"]["load"], summary["chromium bns cold"]["load"]
    fetch = summary["curl profile fetch"]["total"]
    lines += ["", f"warm / ordinary (Chromium load): {warm / ordinary:.2f}x (target <= 1.25x)",
              f"cold - ordinary - one profile fetch ({fetch:.2f} ms): {cold - ordinary - fetch:.2f} ms "
              f"(target <= 20 ms)",
              f"curl warm / ordinary (total): {summary['curl bns warm']['total'] / summary['curl ordinary']['total']:.2f}x"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    base = REPO / "bench" / "out" / f"web-{time.strftime('%Y%m%d-%H%M%S')}"
    base.mkdir(parents=True)
    names = prepare(base, args.reps)
    netns = NetNs(prefix="bnsbench").create({"resolv.conf": "nameserver 127.0.0.1\n",
                                             "hosts": "127.0.0.1 localhost\n"}, lan_address="198.51.100.2/24")
    try:
        start(netns, base)
        runs = measure(netns, names)
    finally:
        netns.delete()
    (base / "runs.json").write_text(json.dumps(runs, indent=1))
    print(report(summarize(runs), args.reps))


if __name__ == "__main__":
    main()
