"""The shared fixtures reach real Postgres, Redis and NATS."""

from infra.migrate import MIGRATIONS
from infra.streams import ensure_actions_stream


async def test_backing_services_answer(pg, redis_client, nats_client, names):
    js = nats_client.jetstream()

    await ensure_actions_stream(js, names)
    info = await js.stream_info(names.actions_stream)
    versions = await pg.fetch("SELECT version FROM schema_migrations ORDER BY version")

    assert await redis_client.ping()
    assert info.config.subjects == [names.actions_subjects]
    assert [row["version"] for row in versions] == sorted(p.stem for p in MIGRATIONS.glob("*.sql"))
