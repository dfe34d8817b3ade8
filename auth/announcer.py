"""Announce ended sessions on core NATS, so that every gateway closes their sockets at once.

The session is already gone from Redis when this runs, so every later token check fails no
matter what happens here; the announcement only makes open sockets close now rather than at a
gateway's next sweep. A lost announcement therefore costs seconds, never safety.
"""

import structlog
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from podium.auth.v1 import auth_pb2

from infra.names import Names

log = structlog.get_logger(__name__)

REASONS = {
    "logout": auth_pb2.SESSION_END_REASON_LOGOUT,
    "banned": auth_pb2.SESSION_END_REASON_BANNED,
    "reused": auth_pb2.SESSION_END_REASON_REFRESH_REUSED,
}


class Announcer:
    """Publish SessionEnded events for one namespace."""

    def __init__(self, nc: NATS, names: Names) -> None:
        self._nc = nc
        self._subject = names.sessions_ended_subject

    async def session_ended(self, session_key: str, player_id: str, reason: str) -> None:
        event = auth_pb2.SessionEnded(
            session_key=session_key, player_id=player_id, reason=REASONS[reason]
        )
        try:
            await self._nc.publish(self._subject, event.SerializeToString())
        except NatsError:
            log.warning("session_end_not_announced", session_key=session_key, exc_info=True)
