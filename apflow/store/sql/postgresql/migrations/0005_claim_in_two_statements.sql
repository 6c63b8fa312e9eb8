-- The claim in two statements instead of four: the candidate tasks, their free-slot check
-- and their locks are one statement, and the free-slot check runs only until the claim has
-- its tasks (in due order) instead of over every candidate. A claim's database work was
-- mostly the cost of its statements, not of its runs. It also declares that it returns
-- about as many rows as its limit (ROWS 50), not the 1,000 PostgreSQL assumes of a
-- set-returning function: with that guess, the query that joins each claimed run to its
-- task (queries.sql, claim_runs_with_tasks) hashed the whole tasks table on every claim
-- instead of looking up the few tasks by key.
DROP FUNCTION apflow_with_free_slots(text[], integer);

CREATE OR REPLACE FUNCTION apflow_claim_runs(p_due_by timestamptz, p_user text,
                                             p_limit integer, p_node text,
                                             p_lease_until timestamptz, p_now timestamptz)
RETURNS SETOF runs
LANGUAGE plpgsql VOLATILE
ROWS 50  -- about the claim's limit, not the default 1,000
-- Index paths are the right ones for every statement here, whatever the statistics say (the
-- runs table swings from empty to thousands of queued rows faster than they follow).
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    window_size integer := p_limit * 4 + 64;
    scanned integer;
    locked text[];
BEGIN
    -- The tasks to claim for, locked: those of the earliest window_size queued due runs
    -- (runs_queued_idx, in order: a task's first row there is its earliest queued run), in
    -- that order, that have a free slot (fewer running runs than max_concurrent; a deleted
    -- task has one), the first p_limit of them, each try-locked (held to commit) so that
    -- concurrent claimers split the tasks. Only when the window is full and still short of
    -- p_limit tasks (many runs per task, or tasks at their limit) is the statement run again
    -- over all queued due runs (LIMIT NULL: no limit). Either way a claim costs about what
    -- it takes. A task locked the first time is locked again, harmlessly.
    LOOP
        SELECT array_agg(ready.task_id) INTO locked
        FROM (
            SELECT ordered.task_id
            FROM (
                SELECT earliest.task_id, min(earliest.not_before) AS first_at
                FROM (SELECT runs.task_id, runs.not_before
                      FROM runs
                      WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
                        AND (p_user IS NULL OR runs.user_id = p_user)
                      ORDER BY runs.not_before
                      LIMIT window_size) AS earliest
                GROUP BY earliest.task_id
                ORDER BY first_at, earliest.task_id
                OFFSET 0  -- sorted here: the slot check below stops once p_limit tasks pass
            ) AS ordered
            WHERE (SELECT count(*) FROM runs AS live
                   WHERE live.task_id = ordered.task_id AND live.state = 'running')
                  < coalesce((SELECT task.max_concurrent FROM tasks AS task
                              WHERE task.id = ordered.task_id), 1)
            LIMIT p_limit
        ) AS ready
        WHERE pg_try_advisory_xact_lock(1095780936, hashtext(ready.task_id));
        EXIT WHEN window_size IS NULL OR coalesce(cardinality(locked), 0) >= p_limit;
        SELECT count(*) INTO scanned
        FROM (SELECT 1 FROM runs
              WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
                AND (p_user IS NULL OR runs.user_id = p_user)
              LIMIT window_size) AS probe;
        EXIT WHEN scanned < window_size;  -- the window held every queued due run
        window_size := NULL;
    END LOOP;
    IF locked IS NULL THEN
        RETURN;
    END IF;
    -- Free slots counted now, after the locks, with a fresh snapshot (a volatile function):
    -- every claim that committed meanwhile is seen, so max_concurrent holds across nodes.
    -- Each task's oldest due runs by index, the claimed rows by primary key; each run
    -- starts at its not_before, or now if that has passed.
    RETURN QUERY
    WITH slots AS (
        SELECT locked_task.task_id,
               least(p_limit, coalesce(tasks.max_concurrent, 1)
                              - (SELECT count(*) FROM runs AS live
                                 WHERE live.task_id = locked_task.task_id
                                   AND live.state = 'running')) AS free
        FROM unnest(locked) AS locked_task (task_id)
        LEFT JOIN tasks ON tasks.id = locked_task.task_id
    ), picks AS (
        SELECT pick.id, pick.not_before, pick.queued_at
        FROM slots
        CROSS JOIN LATERAL (
            SELECT runs.id, runs.not_before, runs.queued_at
            FROM runs
            WHERE runs.task_id = slots.task_id AND runs.state = 'queued'
              AND runs.not_before <= p_due_by AND (p_user IS NULL OR runs.user_id = p_user)
            ORDER BY runs.not_before, runs.queued_at, runs.id
            LIMIT greatest(slots.free, 0)
        ) AS pick
    ), claimable AS (
        SELECT runs.id
        FROM runs
        WHERE runs.id = ANY (ARRAY(SELECT picks.id FROM picks
                                   ORDER BY picks.not_before, picks.queued_at, picks.id
                                   LIMIT p_limit))
          AND (runs.state = 'queued') IS TRUE  -- not an index condition: found by id
        FOR UPDATE SKIP LOCKED
    )
    UPDATE runs SET state = 'running', started_at = greatest(runs.not_before, p_now),
                    node = p_node, lease_expires_at = p_lease_until
    WHERE runs.id = ANY (ARRAY(SELECT claimable.id FROM claimable))
    RETURNING runs.*;
END
$$;
