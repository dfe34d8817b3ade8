"""Monthly partitions of the score history, created before the events that need them.

Migration 0003 splits score_events into one partition per UTC month plus a default partition.
An event of a month that has no partition yet lands in the default partition, and creating
that month's partition later must scan the whole default partition under an exclusive lock,
with score writes to it held off, and move the month's rows out: the later it happens, the
more it costs. So the game worker creates partitions ahead of time, at start and then
periodically, on every shard database. Where score_events is a TimescaleDB hypertable, chunks
appear on insert and this does nothing.
"""

import asyncpg
import structlog

log = structlog.get_logger(__name__)


async def ensure_history_partitions(
    db: asyncpg.Pool | asyncpg.Connection, months_ahead: int = 3
) -> int:
    """Create the missing partitions from this month through months_ahead; return how many.

    Several processes may call it at once: the database function makes them take turns. On a
    connection inside a transaction, its lock is held until that transaction ends.
    """
    created = await db.fetchval("SELECT podium_ensure_score_event_partitions($1)", months_ahead)
    if created:
        log.info("history_partitions_created", created=created, months_ahead=months_ahead)
    return created
