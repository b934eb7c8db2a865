"""Shared fixtures: where the real market data lives, and how to skip without it."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .pgserver import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
MARKET_DATA = ROOT.parent / "shared" / "data" / "market"


def require_market_data() -> Path:
    """The real market data folder; skip (fail under CI=true) when it is absent."""
    if MARKET_DATA.is_dir():
        return MARKET_DATA
    reason = f"real market data not found at {MARKET_DATA} (expected ../shared beside the repo)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def market_data() -> Path:
    """Path of ``../shared/data/market`` (read in place, never copied)."""
    return require_market_data()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator["PostgresServer"]:
    """A real PostgreSQL server on loopback for the whole session.

    Skips with a reason when the server binaries are missing outside CI; under
    CI=true a missing server is a failure (`make test` installs it).
    """
    from .pgserver import PostgresServer, find_pg_bin

    if find_pg_bin() is None:
        reason = "PostgreSQL server binaries not found (make test installs them: apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(durable=False).start()
    server.create_database("tapereader_test")
    try:
        yield server
    finally:
        server.stop()
