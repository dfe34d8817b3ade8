-- Score history split by time, so that old history can be archived or dropped a piece at a
-- time and recent history stays small. Where the TimescaleDB extension can load, score_events
-- becomes a hypertable; otherwise it becomes a natively partitioned table with one partition
-- per UTC month and a default partition as a safety net. Neither form has a unique constraint,
-- so the table can still be distributed by player_id (Citus) later.

-- Create the partition of one UTC month (any day of it names the month) unless it exists, and
-- say whether it did. Rows of that month that landed in the default partition meanwhile are
-- moved into the new partition, so a late call repairs instead of failing. Callers of one
-- database take turns on an advisory lock held to the end of their transaction.
CREATE FUNCTION podium_add_score_event_partition(month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    first_day timestamp := date_trunc('month', month::timestamp);
    partition_name text := to_char(first_day, '"score_events_y"YYYY"m"MM');
    lower_bound text := to_char(first_day, 'YYYY-MM-DD') || ' 00:00:00+00';
    upper_bound text := to_char(first_day + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    default_partition regclass;
BEGIN
    -- "podp" (partitions); infra/migrate.py holds "podi" while it migrates.
    PERFORM pg_advisory_xact_lock(1886348400);

    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN false;
    END IF;

    -- Built apart and attached below: attaching locks the parent less than CREATE TABLE ...
    -- PARTITION OF does, and leaves a place to put the month's rows from the default partition.
    EXECUTE format('CREATE TABLE %I (LIKE score_events INCLUDING DEFAULTS)', partition_name);

    SELECT nullif(partdefid, 0)::regclass INTO default_partition
    FROM pg_partitioned_table WHERE partrelid = 'score_events'::regclass;
    IF default_partition IS NOT NULL THEN
        -- Until the attach, writers of this month would still reach the default partition.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', default_partition);
        EXECUTE format(
            'WITH moved AS (DELETE FROM %s WHERE at >= $1::timestamptz AND at < $2::timestamptz'
            ' RETURNING player_id, board, period, delta, score, action_id, at)'
            ' INSERT INTO %I (player_id, board, period, delta, score, action_id, at)'
            ' SELECT * FROM moved',
            default_partition, partition_name
        ) USING lower_bound, upper_bound;
    END IF;

    EXECUTE format(
        'ALTER TABLE score_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        partition_name, lower_bound, upper_bound
    );
    RETURN true;
END
$$;

-- Create every missing monthly partition from the current UTC month through months_ahead
-- months ahead and return how many were created. Services call it at start and periodically
-- (infra/history.py). A hypertable, or any score_events that is not natively partitioned,
-- needs nothing: the answer is 0.
CREATE FUNCTION podium_ensure_score_event_partitions(months_ahead int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    created int := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 THEN
        RAISE EXCEPTION 'months_ahead must be 0 or more, not %', months_ahead;
    END IF;

    IF NOT EXISTS (
        SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('score_events')
    ) THEN
        RETURN 0;
    END IF;

    FOR ahead IN 0..months_ahead LOOP
        IF podium_add_score_event_partition(
            (this_month + make_interval(months => ahead))::date
        ) THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

DO $$
DECLARE
    -- CREATE EXTENSION succeeds only where the server preloads the library.
    timescale_loadable boolean :=
        EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
        AND current_setting('shared_preload_libraries') ~ '(^|[\s,"])timescaledb([\s,"]|$)';
    month date;
BEGIN
    IF timescale_loadable THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;

        -- Week-long chunks. TimescaleDB sizes chunks so that the indexes of the chunk being
        -- written fit in a quarter of memory. An entry of the (player_id, at) index takes
        -- about 50 bytes with page slack, so on a 16 GB server a week stays within that up to
        -- ~80M events, ~130 a second on average; a busier deployment shortens the interval
        -- with set_chunk_time_interval (it applies to chunks created afterwards). Shorter
        -- chunks by default would cost the lookup of an action's events, which has no time
        -- bound and visits every chunk: weeks keep that to 52 a year. No default index on
        -- "at" alone: nothing reads by time across players, and every action would pay for it.
        PERFORM create_hypertable(
            'score_events',
            by_range('at', INTERVAL '7 days'),
            create_default_indexes => false,
            migrate_data => true
        );
        RETURN;
    END IF;

    ALTER TABLE score_events RENAME TO score_events_unpartitioned;

    CREATE TABLE score_events (
        player_id uuid NOT NULL,
        board     text NOT NULL,
        period    text NOT NULL,
        delta     bigint NOT NULL,
        score     bigint NOT NULL,
        action_id uuid NOT NULL,
        at        timestamptz NOT NULL DEFAULT now()
    ) PARTITION BY RANGE (at);
    CREATE TABLE score_events_default PARTITION OF score_events DEFAULT;

    -- Every month that already holds events gets its own partition, so the default partition
    -- starts empty; then the current month and three ahead, as the services keep them.
    FOR month IN
        SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC')::date
        FROM score_events_unpartitioned
    LOOP
        PERFORM podium_add_score_event_partition(month);
    END LOOP;
    PERFORM podium_ensure_score_event_partitions(3);

    INSERT INTO score_events (player_id, board, period, delta, score, action_id, at)
    SELECT player_id, board, period, delta, score, action_id, at FROM score_events_unpartitioned;
    DROP TABLE score_events_unpartitioned;

    -- Built once after the copy rather than row by row during it.
    CREATE INDEX score_events_by_player ON score_events (player_id, at);
END
$$;
