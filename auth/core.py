"""Register, login, refresh and token validation, as plain functions over the stores in Deps.

Each failure a client can cause raises a PodiumError with a stable code and a fixed sentence;
the gRPC layer only translates it.
"""

import re
import unicodedata
from dataclasses import dataclass

import grpc
import structlog
from redis.exceptions import RedisError

from auth import metrics
from auth.announcer import Announcer
from auth.limits import Limiter
from auth.passwords import Passwords
from auth.sessions import Rotation, Sessions
from auth.store import Accounts, UsernameTaken, username_key
from auth.tokens import AccessClaims, InvalidToken, Tokens
from infra.errors import PodiumError

log = structlog.get_logger(__name__)

USERNAME_MIN, USERNAME_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 128
_USERNAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Deps:
    """The stores and helpers every auth operation works through."""

    accounts: Accounts
    passwords: Passwords
    sessions: Sessions
    tokens: Tokens
    limiter: Limiter
    announcer: Announcer


@dataclass(frozen=True)
class SessionTokens:
    """The tokens of a session, from a login or a refresh."""

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


def login_rate_limited(retry_after: int) -> PodiumError:
    return PodiumError(
        "LOGIN_RATE_LIMITED",
        "too many failed logins; try again later",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        retry_after_seconds=retry_after,
    )


def registration_rate_limited(retry_after: int) -> PodiumError:
    return PodiumError(
        "REGISTRATION_RATE_LIMITED",
        "too many registrations from this address; try again later",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        retry_after_seconds=retry_after,
    )


def account_banned() -> PodiumError:
    return PodiumError(
        "ACCOUNT_BANNED", "this account is banned", grpc.StatusCode.PERMISSION_DENIED
    )


def invalid_token() -> PodiumError:
    return PodiumError("INVALID_TOKEN", "invalid access token", grpc.StatusCode.UNAUTHENTICATED)


def session_ended() -> PodiumError:
    return PodiumError("SESSION_ENDED", "session has ended", grpc.StatusCode.UNAUTHENTICATED)


def invalid_refresh_token() -> PodiumError:
    return PodiumError(
        "INVALID_REFRESH_TOKEN", "invalid refresh token", grpc.StatusCode.UNAUTHENTICATED
    )


def refresh_token_reused() -> PodiumError:
    return PodiumError(
        "REFRESH_TOKEN_REUSED",
        "refresh token was already used; the session has ended",
        grpc.StatusCode.UNAUTHENTICATED,
    )


def is_valid_username(username: str) -> bool:
    # The length test comes first so that an oversized name costs nothing more to refuse.
    return USERNAME_MIN <= len(username) <= USERNAME_MAX and bool(_USERNAME.fullmatch(username))


def normalized_password(password: str) -> str | None:
    """The password as hashed: NFC, so that "é" typed as one code point or as two is the same.

    NFC composes at most four code points into one character, so a longer input than this can
    never become a valid password; it is None unread rather than normalized at any length.
    """
    if len(password) > PASSWORD_MAX * 4:
        return None
    return unicodedata.normalize("NFC", password)


def is_valid_password(password: str) -> bool:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return False
    return not any(unicodedata.category(char) == "Cc" for char in password)


async def register(deps: Deps, username: str, password: str, address: str = "") -> str:
    """Create an account and return its new player id.

    Only a registration that will spend a hash is charged to its address.
    """
    if not is_valid_username(username):
        raise invalid_username()
    password = normalized_password(password)
    if password is None or not is_valid_password(password):
        raise invalid_password()
    admission = await deps.limiter.admit_registration(address)
    if admission.retry_after:
        log.warning("registration_throttled", retry_after=admission.retry_after)
        raise registration_rate_limited(admission.retry_after)

    password_hash = await deps.passwords.hash(password)
    try:
        player_id = await deps.accounts.insert(username, password_hash)
    except UsernameTaken:
        raise username_taken() from None

    # Postgres holds the account now; ranking refills a missing name from it, so a Redis
    # failure here must not turn a created account into an error the client would retry.
    try:
        await deps.sessions.remember_username(player_id, username)
    except RedisError:
        log.warning("username_not_cached", player_id=player_id, exc_info=True)
    log.info("account_registered", player_id=player_id)
    return player_id


async def login(deps: Deps, username: str, password: str, address: str) -> SessionTokens:
    """Check the credentials and open a session; unknown users and wrong passwords look alike.

    The attempt is charged to the name and the address before anything else is looked at, and
    a locked-out name is refused without a look at its password.
    """
    well_formed = is_valid_username(username)
    admission = await deps.limiter.admit_login(
        username_key(username) if well_formed else "", address
    )
    if admission.retry_after:
        log.warning("login_throttled", retry_after=admission.retry_after)
        metrics.LOGINS_THROTTLED.inc()
        raise login_rate_limited(admission.retry_after)

    password = normalized_password(password)
    # No account can hold such a name or password, so refuse before spending a hash on it.
    if not well_formed or password is None or not 0 < len(password) <= PASSWORD_MAX:
        metrics.LOGINS_REFUSED.inc()
        raise invalid_credentials()

    account = await deps.accounts.find(username)
    if account is None:
        await deps.passwords.verify_dummy(password)
    if account is None or not await deps.passwords.verify(account.password_hash, password):
        reason = "unknown_user" if account is None else "wrong_password"
        log.warning("login_refused", reason=reason)
        metrics.LOGINS_REFUSED.inc()
        raise invalid_credentials()

    await deps.limiter.login_succeeded(admission)
    if account.banned:
        metrics.LOGINS_BANNED.inc()
        raise account_banned()
    if deps.passwords.needs_rehash(account.password_hash):
        new_hash = await deps.passwords.hash(password)
        await deps.accounts.replace_password_hash(account.player_id, new_hash)
        log.info("password_rehashed", player_id=account.player_id)

    opened = await deps.sessions.open(account.player_id, account.username)
    # A ban that landed between the read above and the open would have missed this session.
    if await deps.accounts.is_banned(account.player_id):
        await deps.sessions.end(opened.session_key, account.player_id)
        metrics.LOGINS_BANNED.inc()
        raise account_banned()

    metrics.LOGINS_SUCCEEDED.inc()
    log.info("login_succeeded", player_id=account.player_id, session_key=opened.session_key)
    return _session_tokens(
        deps, account.player_id, opened.session_key, account.username, opened.refresh_token
    )


async def refresh(deps: Deps, refresh_token: str) -> SessionTokens:
    """Trade a refresh token for new tokens of the same session; a spent one ends it."""
    rotated = await deps.sessions.rotate(refresh_token)
    if rotated.outcome is Rotation.UNKNOWN:
        log.warning("refresh_refused", reason="unknown")
        raise invalid_refresh_token()
    if rotated.outcome is Rotation.REUSED:
        log.warning(
            "refresh_token_reused", player_id=rotated.player_id, session_key=rotated.session_key
        )
        await deps.announcer.session_ended(rotated.session_key, rotated.player_id, "reused")
        raise refresh_token_reused()

    log.info("session_refreshed", player_id=rotated.player_id, session_key=rotated.session_key)
    return _session_tokens(
        deps, rotated.player_id, rotated.session_key, rotated.username, rotated.refresh_token
    )


def _session_tokens(
    deps: Deps, player_id: str, session_key: str, username: str, refresh_token: str
) -> SessionTokens:
    """A fresh access token for the session, beside the refresh token it now answers to."""
    issued = deps.tokens.issue(player_id, session_key, username)
    return SessionTokens(issued.token, refresh_token, deps.tokens.ttl_seconds, player_id)


async def validate_token(deps: Deps, access_token: str) -> AccessClaims:
    """Return the claims of a genuine token whose session is still open."""
    claims = verified_claims(deps.tokens, access_token)
    if not await deps.sessions.is_open(claims.session_key, claims.player_id):
        log.warning("token_refused", reason="session_ended", player_id=claims.player_id)
        raise session_ended()
    return claims


def verified_claims(tokens: Tokens, access_token: str, allow_expired: bool = False):
    """The token's claims, or INVALID_TOKEN; the reason goes to the log, never to the caller."""
    try:
        return tokens.verify(access_token, allow_expired)
    except InvalidToken as exc:
        log.warning("token_refused", reason=str(exc))
        raise invalid_token() from None
