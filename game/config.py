"""Settings of a game worker (PODIUM_* environment variables)."""

from pydantic import Field

from infra.config import CommonSettings


class GameSettings(CommonSettings):
    """Where the worker's GameService listens and how it pulls and applies actions.

    docs/game.md says why each default is what it is.
    """

    game_listen: str = "127.0.0.1:50052"
    # A registered ruleset name, or "package.module:attribute" naming a ruleset class.
    ruleset: str = "default"
    # Most messages one fetch takes from one partition.
    fetch_batch: int = Field(256, ge=1, le=4096)
    # How long an idle fetch waits for a first message; also how long a stopping worker's
    # last pull request can outlive it.
    fetch_timeout_ms: int = Field(1000, ge=10, le=30000)
    # Most actions decided together (from all ready partitions) in one transaction per shard.
    apply_batch_max: int = Field(1024, ge=1)
    # Batches decided at once; each holds one connection per shard database it touches.
    appliers: int = Field(2, ge=1, le=16)
    # Redeliver an unacked action after this long; well above a batch's worst apply time.
    ack_wait_seconds: int = Field(30, ge=1)
    # A message delivered this many times without an answer (each time its worker died) is
    # dead-lettered instead of being tried again.
    max_deliveries: int = Field(5, ge=1)
    # A message whose handling raises this many times in a row (not counting lost
    # connections, which are waited out) is dead-lettered.
    max_failures: int = Field(3, ge=1)
    # A partition lease lasts this long unless renewed (renewed every third of it), which
    # bounds how long a dead worker's partitions stand still.
    lease_seconds: float = Field(6.0, ge=0.3, le=300.0)
