"""Settings of the gateway (PODIUM_* environment variables)."""

from pydantic import Field

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
    # Entries per board stream; a subscriber's `limit` is a slice of it.
    board_view_size: int = Field(100, ge=1, le=100)
