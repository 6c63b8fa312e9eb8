"""open_store(database_url): choosing the backend, creating the file, failing clearly."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from apflow.domain.errors import ConfigError, StoreUnavailable
from apflow.store import PostgresStore, SqliteStore, mask_password, open_store
from apflow.store.base import TaskFilter
from tests.store.builders import a_task


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///relative/dir/apflow.db", "relative/dir/apflow.db"),
    ("sqlite:////abs/dir/apflow.db", "/abs/dir/apflow.db"),
    ("sqlite:///:memory:", ":memory:"),
])
def test_a_sqlite_url_names_a_file(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


@pytest.mark.parametrize("url", ["postgresql://u:pw@db.example:5433/apflow",
                                 "postgres://db.example/apflow"])
def test_a_postgres_url_opens_postgres(url: str) -> None:
    assert isinstance(open_store(url), PostgresStore)


@pytest.mark.parametrize("url", [
    "", "mysql://db/apflow", "sqlite://relative.db", "sqlite:///", "sqlite:///dir/",
    "sqlite:///x.db?mode=ro", "postgresql://:pw@", "postgresql://u:pw@host:port/db", "apflow.db",
])
def test_a_bad_url_is_a_config_error_naming_database_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("database_url:")
    assert "\n" not in message
    assert "pw" not in message


def test_mask_password_hides_passwords_only() -> None:
    assert mask_password("postgresql://alice:s3cret@db:5432/x?password=p&sslmode=require") == \
        "postgresql://alice:****@db:5432/x?password=****&sslmode=require"
    assert mask_password("postgresql://alice@db/x") == "postgresql://alice@db/x"


async def test_sqlite_creates_the_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "apflow.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        await store.create_task(a_task())
    finally:
        await store.close()
    assert path.is_file()
    reopened = open_store(f"sqlite:///{path}")
    await reopened.open()
    try:
        assert [task.id for task in await reopened.list_tasks(TaskFilter())] == ["t1"]
    finally:
        await reopened.close()


async def test_a_memory_database_works_and_close_is_idempotent() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    await store.create_task(a_task())
    assert (await store.get_task("t1")).id == "t1"
    await store.close()
    await store.close()


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    await store.open()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_task("t1")


async def test_a_sqlite_file_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = open_store(f"sqlite:///{blocker / 'apflow.db'}")
    with pytest.raises(StoreUnavailable):
        await store.open()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_postgres_is_unavailable_quickly_without_the_password() -> None:
    store = open_store(f"postgresql://apflow:hunter2@127.0.0.1:{_closed_port()}/apflow")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "hunter2" not in message and "****" in message and "\n" not in message
    await store.close()


@pytest.mark.postgres
async def test_a_missing_postgres_database_is_unavailable(postgres_server_dsn: str) -> None:
    store = open_store(postgres_server_dsn.rsplit("/", 1)[0] + "/no_such_database_here")
    with pytest.raises(StoreUnavailable, match="no_such_database_here"):
        await store.open()
