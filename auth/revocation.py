"""Ending sessions: logout, bans, and the check gateways run for the sockets they hold.

Each ends the session in Redis first, which every replica reads on every token check, and only
then announces it, so no replica can accept a revoked token after the call returns.
"""

import grpc
import structlog

from auth.core import Deps, verified_claims
from auth.sessions import SESSION_KEY
from infra.errors import PodiumError
from infra.ids import canonical_uuid

log = structlog.get_logger(__name__)

MAX_SESSION_KEYS = 1000


def invalid_player_id() -> PodiumError:
    return PodiumError("INVALID_PLAYER_ID", "player_id must be a UUID")


def player_not_found() -> PodiumError:
    return PodiumError("PLAYER_NOT_FOUND", "no such player", grpc.StatusCode.NOT_FOUND)


def invalid_session_keys() -> PodiumError:
    return PodiumError(
        "INVALID_SESSION_KEYS", "session_keys must be at most 1000 keys of 32 hex digits"
    )


async def logout(deps: Deps, access_token: str) -> None:
    """End the token's session; ending one that has already ended is not an error."""
    claims = verified_claims(deps.tokens, access_token, allow_expired=True)
    if await deps.sessions.end(claims.session_key, claims.player_id):
        await deps.announcer.session_ended(claims.session_key, claims.player_id, "logout")
    log.info("logged_out", player_id=claims.player_id, session_key=claims.session_key)


async def ban(deps: Deps, player_id: str) -> int:
    """Refuse the player's logins from now on and end every open session; return how many."""
    player_id = _canonical(player_id)
    if not await deps.accounts.set_banned(player_id, True):
        raise player_not_found()

    ended = await deps.sessions.end_all(player_id)
    for session_key in ended:
        await deps.announcer.session_ended(session_key, player_id, "banned")
    log.info("player_banned", player_id=player_id, sessions_ended=len(ended))
    return len(ended)


async def unban(deps: Deps, player_id: str) -> None:
    player_id = _canonical(player_id)
    if not await deps.accounts.set_banned(player_id, False):
        raise player_not_found()
    log.info("player_unbanned", player_id=player_id)


async def ended_sessions(deps: Deps, session_keys: list[str]) -> list[str]:
    """Which of the given sessions have ended."""
    if len(session_keys) > MAX_SESSION_KEYS:
        raise invalid_session_keys()
    if not all(SESSION_KEY.fullmatch(key) for key in session_keys):
        raise invalid_session_keys()
    return await deps.sessions.ended(session_keys)


def _canonical(player_id: str) -> str:
    try:
        return canonical_uuid(player_id)
    except ValueError:
        raise invalid_player_id() from None
