"""Settings of the auth service (PODIUM_* environment variables)."""

from pathlib import Path

from pydantic import Field, SecretStr

from infra.config import CommonSettings


class AuthSettings(CommonSettings):
    """Where auth listens, how it signs tokens, hashes passwords and limits logins."""

    auth_listen: str = "127.0.0.1:50051"
    # The signing key as PEM text (from a Secret in production) or, when that is unset, a file.
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path = Path(".podium/jwt-ed25519.pem")
    jwt_key_id: str = Field("dev-1", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # Keys still accepted while keys rotate: a JSON object of kid -> PEM text or a file path.
    jwt_verify_keys: dict[str, str] = {}
    jwt_issuer: str = "podium-auth"
    jwt_audience: str = "podium"
    access_ttl_seconds: int = Field(900, ge=60, le=86400)
    # A session ends this long after login, however often it is refreshed.
    session_ttl_seconds: int = Field(30 * 86400, ge=3600)
    # OWASP minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    argon2_memory_kib: int = Field(19456, ge=19456)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)
    # Failed logins allowed per username, and per client address, within the window; past
    # that, logins are refused for login_lockout_seconds, doubling with each further attempt.
    login_failures_per_username: int = Field(10, ge=1)
    login_failures_per_address: int = Field(100, ge=1)
    login_failure_window_seconds: int = Field(900, ge=1)
    login_lockout_seconds: int = Field(30, ge=1)
    login_lockout_max_seconds: int = Field(900, ge=1)
    # Registrations allowed per client address within their window (each costs an argon2id
    # hash); past that they are refused with the same lockouts as logins.
    registrations_per_address: int = Field(100, ge=1)
    registration_window_seconds: int = Field(600, ge=1)
