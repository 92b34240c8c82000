from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.support.zonefile_data import sqlite_engine


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    return sqlite_engine(tmp_path)
