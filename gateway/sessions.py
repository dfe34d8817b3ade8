"""Open sockets by session, and closing them when their session ends.

Auth announces every ended session (logout, ban, refresh-token reuse) on NATS, and each
gateway closes that session's sockets at once. Core NATS is at-most-once, so a gateway that
was disconnected at that moment would keep a dead session's socket open; a slow sweep that asks
auth which of the open sessions have ended closes those too.
"""

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from podium.auth.v1 import auth_pb2

from gateway.clients import Clients
from infra.errors import PodiumError
from infra.names import Names

log = structlog.get_logger(__name__)

# Private-use WebSocket close code (4000-4999) for "your session has ended; log in again".
SESSION_ENDED_CLOSE_CODE = 4001
SWEEP_BATCH = 1000

Close = Callable[[int, str], Awaitable[None]]


class SessionSockets:
    """The close callbacks of every open socket, grouped by session key."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[Close]] = {}

    def add(self, session_key: str, close: Close) -> None:
        self._by_session.setdefault(session_key, set()).add(close)

    def remove(self, session_key: str, close: Close) -> None:
        closers = self._by_session.get(session_key)
        if closers is None:
            return
        closers.discard(close)
        if not closers:
            del self._by_session[session_key]

    @property
    def session_keys(self) -> list[str]:
        return list(self._by_session)

    async def end(self, session_key: str, reason: str) -> int:
        """Close every socket of a session; returns how many there were."""
        closers = self._by_session.pop(session_key, set())
        for close in closers:
            await close(SESSION_ENDED_CLOSE_CODE, reason)
        return len(closers)


async def follow_ended_sessions(nc, names: Names, sockets: SessionSockets):
    """Subscribe to SessionEnded events; returns the subscription."""

    async def on_event(message) -> None:
        try:
            event = auth_pb2.SessionEnded.FromString(message.data)
        except Exception:
            log.warning("session_event_undecodable")
            return
        reason = auth_pb2.SessionEndReason.Name(event.reason).removeprefix("SESSION_END_REASON_")
        closed = await sockets.end(event.session_key, f"session ended: {reason.lower()}")
        if closed:
            log.info("sockets_closed", session_key=event.session_key, sockets=closed)

    return await nc.subscribe(names.sessions_ended_subject, cb=on_event)


async def sweep_ended_sessions(clients: Clients, sockets: SessionSockets, every: float) -> None:
    """Ask auth, every `every` seconds, which open sessions have ended, and close those."""
    while True:
        await asyncio.sleep(every)
        keys = sockets.session_keys
        for start in range(0, len(keys), SWEEP_BATCH):
            try:
                ended = await clients.ended_sessions(keys[start : start + SWEEP_BATCH])
            except PodiumError as error:
                log.warning("session_sweep_failed", code=error.code)
                break
            for session_key in ended:
                await sockets.end(session_key, "session ended")
