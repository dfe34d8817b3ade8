"""Register, login and token validation, as plain functions over the stores they are given.

Each failure a client can cause raises a PodiumError with a stable code and a fixed sentence;
the gRPC layer only translates it.
"""

import re
import unicodedata
import uuid
from dataclasses import dataclass

import grpc
import structlog
from redis.exceptions import RedisError

from auth.passwords import Passwords
from auth.sessions import Sessions
from auth.store import Accounts, UsernameTaken
from auth.tokens import AccessClaims, InvalidToken, Tokens
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

USERNAME_MIN, USERNAME_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 128
_USERNAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class LoginResult:
    """The tokens of a new session."""

    access_token: str
    refresh_token: str
    expires_in_seconds: int
    player_id: str


def invalid_username() -> PodiumError:
    return PodiumError(
        "INVALID_USERNAME", "username must be 3 to 32 letters, digits, '_', '.' or '-'"
    )


def invalid_password() -> PodiumError:
    return PodiumError(
        "INVALID_PASSWORD", "password must be 8 to 128 characters without control characters"
    )


def username_taken() -> PodiumError:
    return PodiumError("USERNAME_TAKEN", "username is taken", grpc.StatusCode.ALREADY_EXISTS)


def invalid_credentials() -> PodiumError:
    return PodiumError(
        "INVALID_CREDENTIALS", "invalid username or password", grpc.StatusCode.UNAUTHENTICATED
    )


def invalid_token() -> PodiumError:
    return PodiumError("INVALID_TOKEN", "invalid access token", grpc.StatusCode.UNAUTHENTICATED)


def session_ended() -> PodiumError:
    return PodiumError("SESSION_ENDED", "session has ended", grpc.StatusCode.UNAUTHENTICATED)


def is_valid_username(username: str) -> bool:
    # The length test comes first so that an oversized name costs nothing more to refuse.
    return USERNAME_MIN <= len(username) <= USERNAME_MAX and bool(_USERNAME.fullmatch(username))


def is_valid_password(password: str) -> bool:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return False
    return not any(unicodedata.category(char) == "Cc" for char in password)


async def register(
    username: str,
    password: str,
    accounts: Accounts,
    passwords: Passwords,
    sessions: Sessions,
) -> str:
    """Create an account and return its new player id."""
    if not is_valid_username(username):
        raise invalid_username()
    if not is_valid_password(password):
        raise invalid_password()

    player_id = str(uuid.uuid4())
    password_hash = await passwords.hash(password)
    try:
        await accounts.insert(player_id, username, password_hash)
    except UsernameTaken:
        raise username_taken() from None

    # Postgres holds the account now; ranking refills a missing name from it, so a Redis
    # failure here must not turn a created account into an error the client would retry.
    try:
        await sessions.remember_username(player_id, username)
    except RedisError:
        log.warning("username_not_cached", player_id=player_id, exc_info=True)
    log.info("account_registered", player_id=player_id)
    return player_id


async def login(
    username: str,
    password: str,
    accounts: Accounts,
    passwords: Passwords,
    sessions: Sessions,
    tokens: Tokens,
) -> LoginResult:
    """Check the credentials and open a session; unknown users and wrong passwords look alike."""
    # No account can hold such a name or password, so refuse before spending a hash on it.
    if not is_valid_username(username) or not 0 < len(password) <= PASSWORD_MAX:
        raise invalid_credentials()

    account = await accounts.find(username)
    if account is None:
        await passwords.verify_dummy(password)
        log.warning("login_refused", reason="unknown_user")
        raise invalid_credentials()
    if not await passwords.verify(account.password_hash, password):
        log.warning("login_refused", reason="wrong_password", player_id=account.player_id)
        raise invalid_credentials()

    if passwords.needs_rehash(account.password_hash):
        new_hash = await passwords.hash(password)
        await accounts.replace_password_hash(account.player_id, new_hash)
        log.info("password_rehashed", player_id=account.player_id)

    opened = await sessions.open(account.player_id, account.username)
    issued = tokens.issue(account.player_id, opened.session_key, account.username)
    log.info("login_succeeded", player_id=account.player_id)
    return LoginResult(issued.token, opened.refresh_token, tokens.ttl_seconds, account.player_id)


async def validate_token(access_token: str, tokens: Tokens, sessions: Sessions) -> AccessClaims:
    """Return the claims of a genuine token whose session is still open."""
    try:
        claims = tokens.verify(access_token)
    except InvalidToken as exc:
        log.warning("token_refused", reason=str(exc))
        raise invalid_token() from None

    if not await sessions.is_open(claims.session_key, claims.player_id):
        log.warning("token_refused", reason="session_ended", player_id=claims.player_id)
        raise session_ended()
    return claims
