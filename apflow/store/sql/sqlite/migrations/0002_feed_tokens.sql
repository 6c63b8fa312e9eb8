-- Calendar feed tokens: one per user, stored as a SHA-256 digest; a new one replaces the old.
CREATE TABLE feed_tokens (
    user_id TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
