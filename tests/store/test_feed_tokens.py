"""Calendar feed tokens: one digest per user, replaced on rotation, forgotten on revoke."""

from __future__ import annotations

from datetime import UTC, datetime

from apflow.store.sqlstore import SqlStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_a_saved_digest_names_its_user(store: SqlStore) -> None:
    await store.save_feed_token("alice", "d1", NOW)
    assert await store.feed_token_user("d1") == "alice"
    assert await store.feed_token_user("nope") is None


async def test_saving_again_replaces_the_previous_digest(store: SqlStore) -> None:
    await store.save_feed_token("alice", "d1", NOW)
    await store.save_feed_token("alice", "d2", NOW)
    assert await store.feed_token_user("d1") is None
    assert await store.feed_token_user("d2") == "alice"


async def test_revoke_forgets_the_token_once(store: SqlStore) -> None:
    await store.save_feed_token("alice", "d1", NOW)
    await store.save_feed_token("bob", "d2", NOW)
    assert await store.revoke_feed_token("alice") is True
    assert await store.revoke_feed_token("alice") is False
    assert await store.feed_token_user("d1") is None
    assert await store.feed_token_user("d2") == "bob"
