"""Settings of the gateway (PODIUM_* environment variables)."""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from gateway.origins import normal_origin
from infra.config import CommonSettings


class GatewaySettings(CommonSettings):
    """Where the gateway listens, where the services are, and what a client may send."""

    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    auth_target: str = "127.0.0.1:50051"
    game_target: str = "127.0.0.1:50052"
    ranking_target: str = "127.0.0.1:50053"
    # A text frame longer than this gets a FRAME_TOO_LARGE error frame; the socket stays open.
    max_frame_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    # Frames past this size are not read at all: the socket closes with 1009.
    hard_frame_bytes: int = Field(1024 * 1024, ge=1024)
    # A client that sends this many bad frames is closed with 1008.
    max_bad_frames: int = Field(20, ge=1)
    # How often open sessions are checked with auth, in case a revocation event was missed.
    session_sweep_seconds: float = Field(30.0, gt=0)
    # Proxies in front of the gateway that append to X-Forwarded-For; 0 trusts no header.
    trusted_proxy_hops: int = Field(0, ge=0, le=5)
    # Origins (scheme://host[:port]) of browser pages, besides the gateway's own, that may open
    # sockets, comma-separated; "*" allows any. Requests without an Origin header (programs)
    # are not checked.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # The gateway pings an idle socket after this long and drops it when the pong is not back
    # within half of it; a client may ping the gateway too.
    heartbeat_seconds: float = Field(30.0, ge=0.05, le=3600)
    # A socket whose frames cannot be written for this long (its client stopped reading) is
    # closed with 1013.
    send_stall_seconds: float = Field(10.0, gt=0)
    # The kernel's send buffer of each socket (0: the system's, which grows to megabytes). A
    # small one bounds what a stuck reader holds and lets the stall limit notice it sooner.
    socket_send_buffer_bytes: int = Field(64 * 1024, ge=0)
    # Actions per second each player may send through one gateway, and the burst allowed.
    action_rate_per_second: float = Field(20.0, gt=0)
    action_burst: int = Field(40, ge=1)
    # How long POST /v1/actions waits for its result before answering 202 (pending).
    rest_action_wait_seconds: float = Field(5.0, gt=0, le=60)
    # On SIGTERM: how long the gateway stays up, refusing new sockets while load balancers
    # notice it is not ready, before it closes the open ones with 1001.
    drain_grace_seconds: float = Field(5.0, ge=0, le=300)
    # First pages of top reads are answered from a cache dropped on every change of their
    # board; this bounds how stale one can be if a change event is lost. 0 turns it off.
    top_cache_seconds: float = Field(1.0, ge=0, le=60)
    # Entries per board stream; a subscriber's `limit` is a slice of it.
    board_view_size: int = Field(100, ge=1, le=100)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _normal_origins(cls, origins: list[str]) -> list[str]:
        """Each origin in the form browsers send it; `null` and the like are refused, since
        sandboxed and file: pages would all share it."""
        normal = []
        for origin in origins:
            form = "*" if origin == "*" else normal_origin(origin)
            if form is None:
                raise ValueError(f"{origin!r} is not an http(s) origin")
            normal.append(form)
        return normal
