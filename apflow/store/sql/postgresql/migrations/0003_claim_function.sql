-- Claims in one round trip: lock up to p_limit tasks with due queued runs and a free slot,
-- then start their oldest due runs within the free slots. A volatile function runs each
-- statement with a fresh snapshot, so the recount after the locks sees every claim that
-- committed while this one waited: max_concurrent holds across nodes (as the two statements
-- of a transaction would, with three round trips fewer).
CREATE FUNCTION apflow_claim_runs(p_due_by timestamptz, p_user text, p_limit integer,
                                  p_node text, p_lease_until timestamptz, p_now timestamptz)
RETURNS SETOF runs
LANGUAGE plpgsql VOLATILE
-- The runs table swings from empty to thousands of queued rows and back, faster than
-- autovacuum's statistics follow; planned without them, the walk below became a full scan
-- and sort of every queued run (33 ms with 10,000 queued, instead of 0.3 ms). Index paths
-- are the right ones for every statement here, whatever the statistics say.
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    locked text[];
BEGIN
    -- Walk the queued runs in not_before order (runs_claim_idx), each task once, at its
    -- earliest queued run and only with a free slot; try-lock each (held to commit), so
    -- concurrent claimers split the tasks. A claim costs what it takes, not what is queued.
    SELECT array_agg(candidates.task_id) INTO locked
    FROM (
        SELECT runs.task_id
        FROM runs
        WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
          AND (p_user IS NULL OR runs.user_id = p_user)
          AND NOT EXISTS (SELECT 1 FROM runs AS earlier
                          WHERE earlier.task_id = runs.task_id AND earlier.state = 'queued'
                            AND (p_user IS NULL OR earlier.user_id = p_user)
                            AND (earlier.not_before < runs.not_before
                                 OR (earlier.not_before = runs.not_before
                                     AND earlier.id < runs.id)))
          AND (SELECT count(*) FROM runs AS live
               WHERE live.task_id = runs.task_id AND live.state = 'running')
              < coalesce((SELECT tasks.max_concurrent FROM tasks WHERE tasks.id = runs.task_id), 1)
        ORDER BY runs.not_before
        LIMIT p_limit
    ) AS candidates
    WHERE pg_try_advisory_xact_lock(1095780936, hashtext(candidates.task_id));
    IF locked IS NULL THEN
        RETURN;
    END IF;
    -- Free slots counted now, after the locks; a deleted task has one slot. Each task's
    -- oldest due runs by index, the claimed rows by primary key; each run starts at its
    -- not_before, or now if that has passed.
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
