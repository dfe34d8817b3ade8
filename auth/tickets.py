"""Single-use tickets that open one WebSocket from a browser.

A browser cannot send an Authorization header with a WebSocket upgrade, and whatever it puts in
the URL may be written to access logs along the way. So it trades its access token over REST for
a ticket that works once, within seconds: by the time a log is read, the ticket opens nothing.
Redis holds each ticket by its digest, and GETDEL spends it in one step, so two gateways racing
with the same ticket cannot both win.
"""

import hashlib
import secrets
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis
import structlog

from auth.core import Deps, session_ended, validate_token
from infra.errors import PodiumError
from infra.names import Names

log = structlog.get_logger(__name__)

TICKET_TTL_SECONDS = 30
MAX_TICKET_CHARS = 64
# Tickets one session may be issued per TICKET_TTL_SECONDS: a page reconnecting with backoff
# needs a handful; more only fills Redis.
TICKETS_PER_SESSION = 30


def invalid_ticket() -> PodiumError:
    return PodiumError(
        "INVALID_TICKET",
        "the ticket is unknown, expired or already used; ask for a new one",
        grpc.StatusCode.UNAUTHENTICATED,
    )


def tickets_rate_limited(retry_after: int) -> PodiumError:
    return PodiumError(
        "TICKET_RATE_LIMITED",
        "too many tickets for this session; wait before asking again",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        retry_after_seconds=retry_after,
    )


@dataclass(frozen=True)
class TicketHolder:
    """The session a ticket was issued for."""

    player_id: str
    session_key: str
    username: str


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class Tickets:
    """Tickets in Redis under one namespace."""

    def __init__(self, redis: aioredis.Redis, names: Names) -> None:
        self._redis = redis
        self._names = names

    async def issue(self, holder: TicketHolder) -> str:
        """A new ticket for the holder, or TICKET_RATE_LIMITED past the session's allowance."""
        count_key = self._names.tickets_issued_key(holder.session_key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(count_key)
            pipe.expire(count_key, TICKET_TTL_SECONDS, nx=True)
            pipe.ttl(count_key)
            issued, _, ttl = await pipe.execute()
        if issued > TICKETS_PER_SESSION:
            raise tickets_rate_limited(max(1, ttl))

        ticket = secrets.token_urlsafe(24)
        value = "\n".join((holder.player_id, holder.session_key, holder.username))
        key = self._names.ticket_key(_digest(ticket))
        await self._redis.set(key, value, ex=TICKET_TTL_SECONDS, nx=True)
        return ticket

    async def spend(self, ticket: str) -> TicketHolder | None:
        """The ticket's holder, once; None for a ticket unknown, expired or spent."""
        if not 0 < len(ticket) <= MAX_TICKET_CHARS or not ticket.isascii():
            return None
        value = await self._redis.getdel(self._names.ticket_key(_digest(ticket)))
        if value is None:
            return None
        player_id, session_key, username = value.decode().split("\n", 2)
        return TicketHolder(player_id, session_key, username)


async def issue_ticket(deps: Deps, tickets: Tickets, access_token: str) -> str:
    """A ticket for the session of a valid access token."""
    claims = await validate_token(deps, access_token)

    holder = TicketHolder(claims.player_id, claims.session_key, claims.username)
    return await tickets.issue(holder)


async def redeem_ticket(deps: Deps, tickets: Tickets, ticket: str) -> TicketHolder:
    """Spend a ticket; its session must still be open."""
    holder = await tickets.spend(ticket)
    if holder is None:
        log.warning("ticket_refused", reason="unknown")
        raise invalid_ticket()

    if not await deps.sessions.is_open(holder.session_key, holder.player_id):
        log.warning("ticket_refused", reason="session_ended", player_id=holder.player_id)
        raise session_ended()
    return holder
