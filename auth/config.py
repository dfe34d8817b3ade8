"""Settings of the auth service (PODIUM_* environment variables)."""

from pathlib import Path

from pydantic import Field

from infra.config import CommonSettings


class AuthSettings(CommonSettings):
    """Where auth listens, how it signs tokens and how hard it hashes passwords."""

    auth_listen: str = "127.0.0.1:50051"
    jwt_private_key_file: Path = Path(".podium/jwt-ed25519.pem")
    jwt_key_id: str = "dev-1"
    jwt_issuer: str = "podium-auth"
    jwt_audience: str = "podium"
    access_ttl_seconds: int = Field(900, ge=60, le=86400)
    session_ttl_seconds: int = Field(30 * 86400, ge=3600)
    # OWASP minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    argon2_memory_kib: int = Field(19456, ge=19456)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)
