"""Typed settings read once from PODIUM_* environment variables at start.

Each service subclasses CommonSettings with its own keys; a bad value fails at boot with the
variable's name, never later in the middle of a request.
"""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Where the backing stores are, and which namespace this deployment's names live in."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_", frozen=True, extra="ignore")

    namespace: str = Field("podium", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/podium"
    # Comma-separated DSNs of the shard databases, in order; empty means postgres_dsn alone.
    # Changing the count moves logical shards between databases (see infra.shards).
    postgres_shards: Annotated[list[str], NoDecode] = []
    redis_url: str = "redis://127.0.0.1:6379/0"
    nats_url: str = "nats://127.0.0.1:4222"
    # Servers of a NATS cluster that keep each JetStream stream: 3 in production (k8s/
    # components/nats), 1 for a single server, which refuses more.
    stream_replicas: int = Field(1, ge=1, le=5)
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Deadline for every call one service makes to another: gRPC has none by default.
    rpc_timeout_ms: int = Field(3000, ge=50, le=60000)
    # gRPC clients ping an idle connection this often and servers accept pings twice as
    # often, so a long-lived stream with nothing to say is kept open and a dead peer noticed.
    grpc_keepalive_ms: int = Field(20_000, ge=100, le=3_600_000)
    # A gRPC service serves Prometheus metrics (GET /metrics) on this port; 0 serves none, so
    # that services sharing a machine do not fight over one port. The gateway serves /metrics
    # on its HTTP port whatever this says.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    # How often a gRPC service checks that its stores answer; while one does not, its
    # grpc.health.v1 status is NOT_SERVING.
    dependency_check_ms: int = Field(2000, ge=50, le=60_000)

    @field_validator("postgres_shards", mode="before")
    @classmethod
    def _split_dsns(cls, value: object) -> object:
        if isinstance(value, str):
            return [dsn.strip() for dsn in value.split(",") if dsn.strip()]
        return value

    @property
    def shard_dsns(self) -> list[str]:
        """The databases players are spread over, in shard order."""
        return self.postgres_shards or [self.postgres_dsn]
