-- A claim returns at most its limit of runs (scheduler.max_concurrent, 10 by default), not
-- the 1,000 rows PostgreSQL assumes of a set-returning function: with that guess, the query
-- that joins each claimed run to its task's head (queries.sql, claim_runs) hashed the whole
-- tasks table on every claim instead of looking up the few tasks by key.
ALTER FUNCTION apflow_claim_runs(timestamptz, text, integer, text, timestamptz, timestamptz)
    ROWS 50;
