"""Score history on the real Postgres: monthly partitions of score_events, their upkeep, and the
migration of a plain score_events table that already holds events.

Tests that create partitions work in a throwaway database of their own, so that what they
count does not depend on the order the tests run in.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from infra.history import ensure_history_partitions
from infra.migrate import MIGRATIONS, create_database, migrate

# The months after the current one that migration 0003 partitions.
MIGRATED_MONTHS_AHEAD = 3


def _month_start(moment: datetime, ahead: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 + ahead
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _partition_name(moment: datetime) -> str:
    month = moment.astimezone(UTC)
    return f"score_events_y{month.year:04d}m{month.month:02d}"


async def _now(db) -> datetime:
    return await db.fetchval("SELECT now()")


async def _partition_bounds(db) -> dict[str, str]:
    """Each partition of score_events by name, with its bounds as Postgres prints them."""
    rows = await db.fetch(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'score_events'::regclass"
    )
    return {row["relname"]: row["bound"] for row in rows}


async def _month_bounds(db, now: datetime, months: range) -> dict[str, str]:
    """The partitions the given months should have, with their bounds printed by Postgres."""
    expected = {}
    for ahead in months:
        start, end = _month_start(now, ahead), _month_start(now, ahead + 1)
        expected[_partition_name(start)] = await db.fetchval(
            "SELECT format('FOR VALUES FROM (%L) TO (%L)', $1::timestamptz, $2::timestamptz)",
            start,
            end,
        )
    return expected


async def _insert_event(db, at: datetime | None = None) -> uuid.UUID:
    """One score event of a new player, at the given time or the column default; its action."""
    action_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO score_events (player_id, board, period, delta, score, action_id, at)"
        " VALUES ($1, 'global', 'all', 5, 5, $2, coalesce($3, now()))",
        uuid.uuid4(),
        action_id,
        at,
    )
    return action_id


async def _partition_of(db, action_id: uuid.UUID) -> str:
    return await db.fetchval(
        "SELECT tableoid::regclass::text FROM score_events WHERE action_id = $1", action_id
    )


def _dsn_with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


@pytest.fixture
async def blank_dsn(postgres_dsn: str):
    """An empty throwaway database next to the session's, dropped afterwards."""
    name = f"{urlsplit(postgres_dsn).path.lstrip('/')}_history_{uuid.uuid4().hex[:8]}"
    dsn = _dsn_with_database(postgres_dsn, name)
    await create_database(dsn)
    yield dsn

    admin = await asyncpg.connect(_dsn_with_database(postgres_dsn, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def blank_conn(blank_dsn: str):
    conn = await asyncpg.connect(blank_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def fresh_pool(blank_dsn: str):
    """A pool on a throwaway database migrated to the latest version."""
    await migrate(blank_dsn)
    pool = await asyncpg.create_pool(blank_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_score_events_is_range_partitioned_on_at_with_a_default_partition(pg):
    row = await pg.fetchrow(
        "SELECT c.relkind::text, p.partstrat::text, a.attname AS key,"
        " p.partdefid::regclass::text AS dflt"
        " FROM pg_class c"
        " JOIN pg_partitioned_table p ON p.partrelid = c.oid"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]"
        " WHERE c.oid = 'score_events'::regclass"
    )

    assert dict(row) == {
        "relkind": "p",
        "partstrat": "r",
        "key": "at",
        "dflt": "score_events_default",
    }


async def test_score_events_keeps_its_columns_defaults_and_index_without_uniqueness(pg):
    columns = await pg.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid) AS dflt"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d"
        " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = 'score_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum"
    )
    indexes = await pg.fetch(
        "SELECT indexrelid::regclass::text AS name, indisunique, pg_get_indexdef(indexrelid)"
        " AS definition FROM pg_index WHERE indrelid = 'score_events'::regclass"
    )

    assert [tuple(column) for column in columns] == [
        ("player_id", "uuid", True, None),
        ("board", "text", True, None),
        ("period", "text", True, None),
        ("delta", "bigint", True, None),
        ("score", "bigint", True, None),
        ("action_id", "uuid", True, None),
        ("at", "timestamp with time zone", True, "now()"),
        # Added by migration 0005.
        ("subscore", "bigint", True, "0"),
    ]
    assert [(index["name"], index["indisunique"]) for index in indexes] == [
        ("score_events_by_player", False)
    ]
    assert indexes[0]["definition"].endswith("USING btree (player_id, at)")


async def test_migration_partitions_this_month_and_the_months_ahead(pg):
    now = await _now(pg)

    bounds = await _partition_bounds(pg)

    expected = await _month_bounds(pg, now, range(MIGRATED_MONTHS_AHEAD + 1))
    assert {name: bounds.get(name) for name in expected} == expected
    assert bounds["score_events_default"] == "DEFAULT"


async def test_event_written_now_lands_in_this_months_partition(pg):
    action_id = await _insert_event(pg)

    partition = await _partition_of(pg, action_id)

    at = await pg.fetchval("SELECT at FROM score_events WHERE action_id = $1", action_id)
    assert partition == _partition_name(at)


async def test_event_far_in_the_future_lands_in_the_default_partition(pg):
    action_id = await _insert_event(pg, await _now(pg) + timedelta(days=50 * 365))

    partition = await _partition_of(pg, action_id)

    assert partition == "score_events_default"


async def test_ensuring_partitions_twice_creates_nothing_the_second_time(pg):
    await ensure_history_partitions(pg)
    before = await _partition_bounds(pg)

    created = await ensure_history_partitions(pg)

    assert created == 0
    assert await _partition_bounds(pg) == before


async def test_ensuring_more_months_ahead_creates_just_the_missing_months(fresh_pool):
    now = await _now(fresh_pool)
    before = await _partition_bounds(fresh_pool)

    created = await ensure_history_partitions(fresh_pool, months_ahead=6)

    after = await _partition_bounds(fresh_pool)
    added = {name: bound for name, bound in after.items() if name not in before}
    assert created == 6 - MIGRATED_MONTHS_AHEAD
    assert added == await _month_bounds(fresh_pool, now, range(MIGRATED_MONTHS_AHEAD + 1, 7))


async def test_concurrent_callers_create_each_month_once(fresh_pool, blank_dsn):
    now = await _now(fresh_pool)
    callers = [await asyncpg.connect(blank_dsn) for _ in range(6)]

    try:
        created = await asyncio.gather(
            *(ensure_history_partitions(conn, months_ahead=12) for conn in callers)
        )
    finally:
        for conn in callers:
            await conn.close()

    bounds = await _partition_bounds(fresh_pool)
    assert sum(created) == 12 - MIGRATED_MONTHS_AHEAD
    assert bounds == {
        **await _month_bounds(fresh_pool, now, range(13)),
        "score_events_default": "DEFAULT",
    }


async def test_ensuring_a_month_moves_its_events_out_of_the_default_partition(fresh_pool):
    month = _month_start(await _now(fresh_pool), 8)
    action_id = await _insert_event(fresh_pool, month + timedelta(days=14))
    stranded_in = await _partition_of(fresh_pool, action_id)

    created = await ensure_history_partitions(fresh_pool, months_ahead=8)

    left_in_default = await fresh_pool.fetchval("SELECT count(*) FROM score_events_default")
    assert stranded_in == "score_events_default"
    assert created == 8 - MIGRATED_MONTHS_AHEAD
    assert await _partition_of(fresh_pool, action_id) == _partition_name(month)
    assert left_in_default == 0


async def test_ensuring_partitions_of_an_unpartitioned_score_events_does_nothing(fresh_pool):
    await fresh_pool.execute(
        "ALTER TABLE score_events RENAME TO score_events_partitioned;"
        " CREATE TABLE score_events (LIKE score_events_partitioned INCLUDING DEFAULTS)"
    )

    created = await ensure_history_partitions(fresh_pool, months_ahead=12)

    count = await fresh_pool.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'score_events_partitioned'::regclass"
    )
    assert created == 0
    assert count == MIGRATED_MONTHS_AHEAD + 2


async def test_ensuring_a_negative_number_of_months_is_refused(pg):
    with pytest.raises(asyncpg.RaiseError, match="months_ahead must be 0 or more"):
        await ensure_history_partitions(pg, months_ahead=-1)


async def test_migrating_a_plain_score_events_keeps_every_event(blank_conn, blank_dsn):
    now = await _now(blank_conn)
    earlier = [path for path in sorted(MIGRATIONS.glob("*.sql")) if path.stem < "0003"]
    async with blank_conn.transaction():
        await blank_conn.execute(
            "CREATE TABLE schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in earlier:
            await blank_conn.execute(path.read_text())
            await blank_conn.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)", path.stem
            )
    moments = [
        now - timedelta(days=420),
        now - timedelta(days=60),
        now - timedelta(days=60),
        now,
        now + timedelta(days=62),
        now + timedelta(days=5 * 365),
    ]
    for at in moments:
        await _insert_event(blank_conn, at)
    old = await blank_conn.fetch("SELECT * FROM score_events")

    applied = await migrate(blank_dsn)

    new = await blank_conn.fetch(
        "SELECT player_id, board, period, delta, score, action_id, at,"
        " tableoid::regclass::text AS part FROM score_events"
    )
    relkind = await blank_conn.fetchval(
        "SELECT relkind::text FROM pg_class WHERE oid = 'score_events'::regclass"
    )
    leftover = await blank_conn.fetchval("SELECT to_regclass('score_events_unpartitioned')")
    assert [path.stem for path in earlier] == ["0001_init", "0002_account_bans"]
    assert applied[0] == "0003_score_history"
    assert (relkind, leftover) == ("p", None)
    assert sorted(tuple(row.values())[:-1] for row in new) == sorted(
        tuple(row.values()) for row in old
    )
    assert [row["part"] for row in sorted(new, key=lambda row: row["at"])] == [
        _partition_name(at) for at in moments
    ]
