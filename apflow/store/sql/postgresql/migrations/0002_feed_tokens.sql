-- Calendar feed tokens: one per user, stored as a SHA-256 digest; a new one replaces the old.
CREATE TABLE feed_tokens (
    user_id text PRIMARY KEY,
    token_digest text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
