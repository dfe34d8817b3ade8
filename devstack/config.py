"""Settings of the one-machine stack (PODIUM_* environment variables)."""

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, model_validator

from infra.config import CommonSettings

# When devstack starts Postgres, Redis or NATS itself (devstack.stores.must_embed says how).
EmbeddedMode = Literal["auto", "always", "never"]
# Most replicas of one service on one machine: far past what two cores can use.
MAX_REPLICAS = 16


class StackSettings(CommonSettings):
    """Ports of every service the stack starts, how many replicas of each it runs and over how
    many databases, and when and where it runs embedded Postgres, Redis and NATS servers."""

    http_host: str = "127.0.0.1"
    # Replica i of a service listens on its port + i: gateway i on http_port + i, and so on.
    http_port: int = Field(8080, ge=1, le=65535)
    auth_port: int = Field(50051, ge=1, le=65535)
    ranking_port: int = Field(50053, ge=1, le=65535)
    game_port: int = Field(50060, ge=1, le=65535)
    gateways: int = Field(1, ge=1, le=MAX_REPLICAS)
    auth_replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    ranking_replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    game_workers: int = Field(1, ge=1, le=MAX_REPLICAS)
    # Without PODIUM_POSTGRES_SHARDS, players are spread over this many databases on the server
    # of PODIUM_POSTGRES_DSN: its own database, then <name>_1, <name>_2, ... (created at start).
    shard_databases: int = Field(1, ge=1, le=64)
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

    @property
    def port_ranges(self) -> dict[str, range]:
        """The ports each service's replicas listen on, by the module that runs it."""
        return {
            "gateway": range(self.http_port, self.http_port + self.gateways),
            "auth": range(self.auth_port, self.auth_port + self.auth_replicas),
            "ranking": range(self.ranking_port, self.ranking_port + self.ranking_replicas),
            "game": range(self.game_port, self.game_port + self.game_workers),
        }

    @property
    def metrics_ports(self) -> range:
        """The ports the gRPC processes serve metrics on, one each, when metrics_port is set."""
        if not self.metrics_port:
            return range(0)
        processes = self.auth_replicas + self.ranking_replicas + self.game_workers
        return range(self.metrics_port, self.metrics_port + processes)

    @property
    def shard_dsns(self) -> list[str]:
        """PODIUM_POSTGRES_SHARDS as given, or shard_databases databases named after the DSN's."""
        if self.postgres_shards:
            return self.postgres_shards
        name = urlsplit(self.postgres_dsn).path.lstrip("/")
        others = [f"{name}_{i}" for i in range(1, self.shard_databases)]
        return [self.postgres_dsn] + [_dsn_with_database(self.postgres_dsn, o) for o in others]

    @model_validator(mode="after")
    def _fits(self) -> "StackSettings":
        """Refuse at start what would only fail later: replicas on ports past 65535 or on
        another service's port, and shard settings that disagree."""
        ranges = {**self.port_ranges, "metrics": self.metrics_ports}
        ranges = {module: ports for module, ports in ranges.items() if ports}
        for module, ports in ranges.items():
            if ports[-1] > 65535:
                raise ValueError(
                    f"{module} ports {_span(ports)} run past 65535; lower {_PORT_OF[module]}"
                )
        for first, ports in ranges.items():
            for second, others in ranges.items():
                if first < second and set(ports) & set(others):
                    raise ValueError(
                        f"{first} ports {_span(ports)} overlap {second} ports {_span(others)}; "
                        f"move one of them with {_PORT_OF[first]} or {_PORT_OF[second]}"
                    )
        derived = self.shard_databases > 1 and not self.postgres_shards
        if derived and not urlsplit(self.postgres_dsn).path.lstrip("/"):
            raise ValueError(
                "PODIUM_SHARD_DATABASES needs a database name in PODIUM_POSTGRES_DSN "
                "to name the others after"
            )
        if len(self.shard_dsns) > 1 and any("," in dsn for dsn in self.shard_dsns):
            raise ValueError(
                "a DSN with a comma cannot be one of several shards (they are listed comma-"
                "separated); percent-encode the comma as %2C"
            )
        given = "shard_databases" in self.model_fields_set
        if given and self.postgres_shards and len(self.postgres_shards) != self.shard_databases:
            raise ValueError(
                f"PODIUM_SHARD_DATABASES={self.shard_databases} disagrees with the "
                f"{len(self.postgres_shards)} DSNs in PODIUM_POSTGRES_SHARDS; set only one"
            )
        return self


_PORT_OF = {
    "gateway": "PODIUM_HTTP_PORT",
    "auth": "PODIUM_AUTH_PORT",
    "ranking": "PODIUM_RANKING_PORT",
    "game": "PODIUM_GAME_PORT",
    "metrics": "PODIUM_METRICS_PORT",
}


def problems(error: ValidationError) -> list[str]:
    """What is wrong with the settings, one line each, named by the variable to change."""
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            variable = "PODIUM_" + str(problem["loc"][0]).upper()
            message = f"{variable}={problem['input']}: {message}"
        lines.append(message)
    return lines


def _dsn_with_database(dsn: str, database: str) -> str:
    """The DSN with another database on the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


def _span(ports: range) -> str:
    return f"{ports[0]}-{ports[-1]}" if len(ports) > 1 else str(ports[0])
