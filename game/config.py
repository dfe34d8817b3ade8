"""Settings of a game worker (PODIUM_* environment variables)."""

from pydantic import Field

from infra.config import CommonSettings


class GameSettings(CommonSettings):
    """Where the worker's GameService listens and how it pulls actions from JetStream."""

    game_listen: str = "127.0.0.1:50052"
    ruleset: str = "default"
    fetch_batch: int = Field(128, ge=1, le=1024)
    fetch_timeout_ms: int = Field(500, ge=10)
    # Redeliver an unacked action after this long; well above a batch's worst apply time.
    ack_wait_seconds: int = Field(30, ge=1)
    # After this many deliveries an action is given up on (issue 4 adds a dead-letter subject).
    max_deliver: int = Field(5, ge=1)
