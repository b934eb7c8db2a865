"""The event store contract on a real PostgreSQL server, plus PostgreSQL specifics."""

import uuid

import pytest

from tapereader.core.store import EventStore, EventStoreError, RetryPolicy

from ..pgserver import PostgresServer
from .store_testcase import EventStoreContract, signals

pytestmark = pytest.mark.postgres


@pytest.fixture
def store_url(postgres_server: PostgresServer) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.create_schema("tapereader_test", schema)
    return postgres_server.url("tapereader_test", schema)


class TestPostgresEventStore(EventStoreContract):
    pass


def test_the_url_never_shows_the_password(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("tapereader_test").replace("tapereader@", "tapereader:s3cret@")
    with EventStore.open(url) as store:  # trust auth: the password is ignored by the server
        assert "s3cret" not in store.description and ":***@" in store.description


def test_a_url_without_a_database_is_a_clear_error() -> None:
    with pytest.raises(EventStoreError, match="needs a host and a database"):
        EventStore.open("postgresql://user:pw@127.0.0.1:5432/")


def test_an_unreachable_server_is_a_clear_error_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    dead = f"postgresql://tapereader:secret@127.0.0.1:{postgres_server.port + 1}/tapereader_test"
    with pytest.raises(EventStoreError, match="cannot open the store") as info:
        EventStore.open(dead, retry=RetryPolicy(attempts=2, initial_backoff_s=0.01))
    assert "secret" not in str(info.value)


def test_two_stores_on_one_database_share_one_log(store_url: str) -> None:
    with EventStore.open(store_url) as a, EventStore.open(store_url) as b:
        a.append(signals(5))
        b.append(signals(5, ts=10**18))
        assert a.count() == b.count() == 10
        positions = [r.position for r in b.read()]
        assert positions == sorted(positions)
