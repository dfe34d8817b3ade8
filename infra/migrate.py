"""Apply the versioned SQL files in migrations/ to a Postgres database, once each.

Several replicas may start together, so the run holds an advisory lock; each file commits in
one transaction with its row in schema_migrations.
"""

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from infra.config import CommonSettings

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x706F6469  # "podi"


async def create_database(dsn: str) -> None:
    """Create the DSN's database if it does not exist, through the server's postgres db."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
            log.info("database_created", database=name)
    finally:
        await admin.close()


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations in file-name order; return the versions applied."""
    await create_database(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.stem in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", path.stem
                )
            log.info("migration_applied", version=path.stem)
            applied.append(path.stem)
        return applied
    finally:
        await conn.close()


async def migrate_all(dsns: list[str]) -> None:
    """Migrate every shard database; each holds the whole schema."""
    for dsn in dsns:
        await migrate(dsn)


if __name__ == "__main__":
    from infra.logs import configure_logging

    configure_logging("migrate")
    dsns = sys.argv[1:] or CommonSettings().shard_dsns
    asyncio.run(migrate_all(dsns))
