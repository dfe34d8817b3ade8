"""Settings of the one-machine stack (PODIUM_* environment variables)."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from infra.config import CommonSettings

# When devstack starts Postgres, Redis or NATS itself (devstack.stores.must_embed says how).
EmbeddedMode = Literal["auto", "always", "never"]


class StackSettings(CommonSettings):
    """Ports of every service the stack starts, how many game workers it runs, and when and
    where it runs embedded Postgres, Redis and NATS servers of its own."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    auth_port: int = Field(50051, ge=1, le=65535)
    ranking_port: int = Field(50053, ge=1, le=65535)
    # Worker i serves GameService on game_port + i.
    game_port: int = Field(50060, ge=1, le=65535)
    game_workers: int = Field(1, ge=1, le=16)
    jwt_private_key_file: Path = Path(".podium/jwt-ed25519.pem")
    # Bots and load tests register many players from one address; production keeps auth's 100.
    registrations_per_address: int = Field(1_000_000, ge=1)
    # Nobody balances load over a laptop's one gateway: Ctrl-C need not wait for one to notice.
    drain_grace_seconds: float = Field(0.0, ge=0)
    ready_timeout_seconds: float = Field(60.0, gt=0)
    # A store nobody configured and nothing answers for is started from a PyPI package (auto);
    # "always" does so even when the default address answers, "never" fails instead.
    embedded_servers: EmbeddedMode = "auto"
    # Each embedded server keeps its data in a folder of its own under this one.
    embedded_dir: Path = Path(".podium/embedded")
