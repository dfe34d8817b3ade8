"""Settings of the ranking service (PODIUM_* environment variables)."""

from pydantic import Field

from infra.config import CommonSettings


class RankingSettings(CommonSettings):
    """Where ranking listens and how often a busy board pushes to its watchers."""

    ranking_listen: str = "127.0.0.1:50053"
    # Changes within this window reach watchers as one message: however often a board
    # changes, a watcher gets at most five views a second by default.
    coalesce_ms: int = Field(200, ge=0, le=5000)
    # A closed period's Redis keys expire this long after it closed; a later read rebuilds
    # them from Postgres.
    period_retention_seconds: int = Field(7 * 86400, ge=60)
