-- The first p_limit of `candidates` (in their order) that have a free slot: fewer running
-- runs than their max_concurrent (a deleted task has one slot).
CREATE FUNCTION apflow_with_free_slots(candidates text[], p_limit integer)
RETURNS text[]
LANGUAGE sql STABLE
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
    SELECT array_agg(picked.task_id ORDER BY picked.position)
    FROM (
        SELECT listed.task_id, listed.position
        FROM unnest(candidates) WITH ORDINALITY AS listed (task_id, position)
        WHERE (SELECT count(*) FROM runs AS live
               WHERE live.task_id = listed.task_id AND live.state = 'running')
              < coalesce((SELECT max_concurrent FROM tasks AS task
                          WHERE task.id = listed.task_id), 1)
        ORDER BY listed.position
        LIMIT p_limit
    ) AS picked
$$;

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
    window_size integer := p_limit * 4 + 64;
    scanned integer;
    wanted text[];
    locked text[];
BEGIN
    -- Which tasks to try, in the order of their earliest queued due run. Usually the
    -- earliest window_size queued runs hold them all (runs_claim_idx, in order): a task's
    -- first row there is its earliest queued run. Only when that window is full and still
    -- short of p_limit tasks with a free slot (many runs per task, or tasks at their limit)
    -- are all queued due runs grouped by task. Either way a claim costs about what it takes.
    SELECT array_agg(firsts.task_id ORDER BY firsts.first_at, firsts.task_id) INTO wanted
    FROM (
        SELECT earliest.task_id, min(earliest.not_before) AS first_at
        FROM (
            SELECT runs.task_id, runs.not_before
            FROM runs
            WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
              AND (p_user IS NULL OR runs.user_id = p_user)
            ORDER BY runs.not_before
            LIMIT window_size
        ) AS earliest
        GROUP BY earliest.task_id
    ) AS firsts;
    wanted := apflow_with_free_slots(wanted, p_limit);
    IF coalesce(cardinality(wanted), 0) < p_limit THEN
        SELECT count(*) INTO scanned
        FROM (SELECT 1 FROM runs
              WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
                AND (p_user IS NULL OR runs.user_id = p_user)
              LIMIT window_size) AS probe;
        IF scanned >= window_size THEN
            SELECT array_agg(due.task_id ORDER BY due.first_at, due.task_id) INTO wanted
            FROM (SELECT runs.task_id, min(runs.not_before) AS first_at
                  FROM runs
                  WHERE runs.state = 'queued' AND runs.not_before <= p_due_by
                    AND (p_user IS NULL OR runs.user_id = p_user)
                  GROUP BY runs.task_id) AS due;
            wanted := apflow_with_free_slots(wanted, p_limit);
        END IF;
    END IF;
    -- Try-lock each (held to commit), so concurrent claimers split the tasks.
    SELECT array_agg(candidate) INTO locked
    FROM unnest(wanted) AS candidate
    WHERE pg_try_advisory_xact_lock(1095780936, hashtext(candidate));
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
