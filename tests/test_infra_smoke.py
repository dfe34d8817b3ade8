"""The shared fixtures reach real Postgres (every shard database, migrated), Redis and NATS."""

from infra.migrate import MIGRATIONS
from infra.streams import ensure_actions_stream


async def test_backing_services_answer(shards, redis_client, nats_client, names):
    js = nats_client.jetstream()

    await ensure_actions_stream(js, names)
    info = await js.stream_info(names.actions_stream)
    versions = [
        await pool.fetchval("SELECT array_agg(version ORDER BY version) FROM schema_migrations")
        for pool in shards
    ]

    assert await redis_client.ping()
    assert info.config.subjects == names.actions_subjects
    expected = sorted(p.stem for p in MIGRATIONS.glob("*.sql"))
    assert versions == [expected] * len(shards)
