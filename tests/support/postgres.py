"""A PostgreSQL cluster of a test's own (initdb + pg_ctl on loopback), which the test may stop and start.

The suite's shared server (BNS_TEST_POSTGRES_URL, started by .ci/run) must not be restarted under
other tests, so a test that restarts PostgreSQL brings its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.dns_fixtures import free_port


def shared_postgres_url(why: str) -> str:
    """The suite's PostgreSQL (BNS_TEST_POSTGRES_URL) with an empty public schema. Unset: skipped
    locally (saying `why` it is needed), a failure in CI, where .ci/run starts one."""
    import pytest
    from sqlalchemy import create_engine, text

    url = os.environ.get("BNS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("BNS_TEST_POSTGRES_URL is not set; .ci/run starts PostgreSQL for this test")
        pytest.skip(why)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class OwnPostgres:
    """One throwaway cluster; as root it runs as the `postgres` user (initdb refuses root)."""

    def __init__(self, bin_dir: Path) -> None:
        # Its own folder directly under /tmp: the `postgres` user cannot enter pytest's 0700 tmp_path.
        self.root, self.bin = Path(tempfile.mkdtemp(prefix="bns-test-pg-")), bin_dir
        root = self.root
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            os.chown(root, pwd.getpwnam(self._user).pw_uid, -1)
        self._run(f"{self.bin}/initdb -D {root}/data -A trust -U postgres")

    def start(self) -> None:
        self._run(f"{self.bin}/pg_ctl -D {self.root}/data -l {self.root}/log -w "
                  f"-o '-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1' start")

    def stop(self) -> None:
        self._run(f"{self.bin}/pg_ctl -D {self.root}/data -m fast -w stop")

    def remove(self) -> None:
        """Stop the cluster if it runs, and delete it."""
        subprocess.run(self._argv(f"{self.bin}/pg_ctl -D {self.root}/data -m immediate stop"), capture_output=True,
                       timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def _argv(self, command: str) -> list[str]:
        return ["su", self._user, "-s", "/bin/sh", "-c", command] if self._user else ["/bin/sh", "-c", command]

    def _run(self, command: str) -> None:
        subprocess.run(self._argv(command), check=True, capture_output=True, timeout=60)
