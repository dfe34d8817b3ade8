"""Typed settings read once from PODIUM_* environment variables at start.

Each service subclasses CommonSettings with its own keys; a bad value fails at boot with the
variable's name, never later in the middle of a request.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Where the backing stores are, and which namespace this deployment's names live in."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_", frozen=True, extra="ignore")

    namespace: str = Field("podium", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/podium"
    redis_url: str = "redis://127.0.0.1:6379/0"
    nats_url: str = "nats://127.0.0.1:4222"
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Deadline for every call one service makes to another: gRPC has none by default.
    rpc_timeout_ms: int = Field(3000, ge=50, le=60000)
