"""One page load in a fresh headless Chromium, timed by the page's own Navigation Timing.

Runs inside the benchmark's network namespace (the DevTools port is on that
namespace's loopback). Prints one JSON object: DNS, connect, TTFB, DOMContentLoaded
and load, in milliseconds from navigation start, plus the wall time of the load as
seen from outside the page. The timing is read over the DevTools protocol, so the
page's own Content-Security-Policy (no scripts) does not get in the way.

    python bench/cdp_navigate.py http://alice.id/
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websocket  # websocket-client

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]
TIMING = ("(() => { const n = performance.getEntriesByType('navigation')[0];"
          " return JSON.stringify({dns: n.domainLookupEnd - n.domainLookupStart,"
          " connect: n.connectEnd - n.connectStart, ttfb: n.responseStart - n.startTime,"
          " dom: n.domainLookupStart - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime,"
          " load: n.loadEventEnd - n.startTime, status: n.responseStatus, url: location.href}); })()")


class Devtools:
    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=30)
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                return message.get("result", {})

    def wait_for(self, event: str) -> None:
        while json.loads(self.socket.recv()).get("method") != event:
            pass


def page_target(profile: Path, browser: subprocess.Popen[bytes]) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if browser.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("chromium did not open its DevTools port")
        time.sleep(0.02)
    port = port_file.read_text().split()[0]
    import urllib.request

    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def navigate(url: str) -> dict:
    browser_path = shutil.which("chromium") or "chromium"
    with tempfile.TemporaryDirectory(prefix="bns-bench-chromium-", ignore_cleanup_errors=True) as profile_dir:
        profile = Path(profile_dir)
        browser = subprocess.Popen([browser_path, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            tools = Devtools(page_target(profile, browser))
            tools.call("Page.enable")
            started = time.perf_counter()
            tools.call("Page.navigate", url=url)
            tools.wait_for("Page.loadEventFired")
            wall = (time.perf_counter() - started) * 1000
            result = tools.call("Runtime.evaluate", expression=TIMING, returnByValue=True)
            timing = json.loads(result["result"]["value"])
            return timing | {"wall": wall}
        finally:
            browser.terminate()
            browser.wait(timeout=10)


if __name__ == "__main__":
    print(json.dumps(navigate(sys.argv[1])))
