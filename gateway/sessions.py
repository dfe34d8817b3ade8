"""Open sockets by session, and closing them when their session ends.

Auth announces every ended session (logout, ban, refresh-token reuse) on NATS, and each
gateway closes that session's sockets at once. Core NATS is at-most-once, so a gateway that
was disconnected at that moment would keep a dead session's socket open; a slow sweep that asks
auth which of the open sessions have ended closes those too.

A socket is registered only once it is set up, after its token was checked, and an event can
fall in between. So ended sessions are remembered for a while, and a socket registering for one
of them is closed at once.
"""

import asyncio
import time
from collections import OrderedDict
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
# Far longer than a socket takes from its token check to registering (a few RPC deadlines);
# the count bounds the memory a burst of logouts can take (about 100 bytes each).
REMEMBER_ENDED_SECONDS = 60.0
REMEMBER_ENDED_MAX = 100_000

Close = Callable[[int, str], Awaitable[None]]


class SessionSockets:
    """The close callbacks of every open socket, grouped by session key."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[Close]] = {}
        # Session key -> (monotonic time it ended, close reason), oldest first.
        self._ended: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def add(self, session_key: str, close: Close) -> None:
        """Register a socket's close callback; close it now if its session has just ended."""
        self._forget_old()
        ended = self._ended.get(session_key)
        if ended is not None:
            await close(SESSION_ENDED_CLOSE_CODE, ended[1])
            return
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
        self._ended[session_key] = (time.monotonic(), reason)
        self._ended.move_to_end(session_key)
        self._forget_old()
        closers = self._by_session.pop(session_key, set())
        for close in closers:
            await close(SESSION_ENDED_CLOSE_CODE, reason)
        return len(closers)

    def _forget_old(self) -> None:
        horizon = time.monotonic() - REMEMBER_ENDED_SECONDS
        while self._ended:
            oldest, (ended_at, _) = next(iter(self._ended.items()))
            if ended_at > horizon and len(self._ended) <= REMEMBER_ENDED_MAX:
                return
            del self._ended[oldest]


def close_reason(reason: int) -> str:
    """The close frame's text for a SessionEndReason, also one newer than this gateway."""
    known = auth_pb2.SessionEndReason.DESCRIPTOR.values_by_number.get(reason)
    if known is None or reason == auth_pb2.SESSION_END_REASON_UNSPECIFIED:
        return "session ended"
    return "session ended: " + known.name.removeprefix("SESSION_END_REASON_").lower()


async def follow_ended_sessions(nc, names: Names, sockets: SessionSockets):
    """Subscribe to SessionEnded events; returns the subscription."""

    async def on_event(message) -> None:
        try:
            event = auth_pb2.SessionEnded.FromString(message.data)
        except Exception:
            log.warning("session_event_undecodable")
            return
        closed = await sockets.end(event.session_key, close_reason(event.reason))
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
