"""The shared fixtures reach real Postgres, Redis and NATS."""

from infra.streams import ensure_actions_stream


async def test_backing_services_answer(pg, redis_client, nats_client, names):
    js = nats_client.jetstream()

    await ensure_actions_stream(js, names)
    info = await js.stream_info(names.actions_stream)
    tables = await pg.fetchval("SELECT count(*) FROM schema_migrations")

    assert await redis_client.ping()
    assert info.config.subjects == [names.actions_subjects]
    assert tables == 1
