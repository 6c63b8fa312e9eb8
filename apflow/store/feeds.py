"""Calendar feed tokens in the SQL stores: one digest per user, replaced on rotation."""

from __future__ import annotations

from datetime import datetime

from apflow.store.database import Database


class FeedTokenQueries:
    """The feed-token part of SqlStore (kept apart: it shares nothing with the rest)."""

    _db: Database

    async def save_feed_token(self, user_id: str, token_digest: str, now: datetime) -> None:
        """Set `user_id`'s feed token digest; the previous token stops working."""
        stamp = self._db.values.time(now, "now")
        async with self._db.write() as tx:
            await tx.execute("save_feed_token", user_id, token_digest, stamp)

    async def revoke_feed_token(self, user_id: str) -> bool:
        """Forget `user_id`'s feed token; False if there was none."""
        async with self._db.write() as tx:
            return await tx.execute("revoke_feed_token", user_id) > 0

    async def feed_token_user(self, token_digest: str) -> str | None:
        """The user whose feed token has this digest, or None."""
        async with self._db.lookup() as tx:
            user = await tx.fetchval("feed_token_user", token_digest)
        return None if user is None else str(user)
