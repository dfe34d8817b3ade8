"""Who is calling: the bearer token of a request and the client's address."""

import grpc
from aiohttp import web

from gateway.context import CONTEXT
from infra.errors import PodiumError


# Each refusal is a new exception: a shared instance would grow its traceback on every raise.
def missing_token() -> PodiumError:
    return PodiumError(
        "MISSING_TOKEN",
        "an Authorization: Bearer token is required",
        grpc.StatusCode.UNAUTHENTICATED,
    )


def invalid_token() -> PodiumError:
    return PodiumError("INVALID_TOKEN", "invalid access token", grpc.StatusCode.UNAUTHENTICATED)


def bearer_token(request: web.Request) -> str:
    """The token of an `Authorization: Bearer <token>` header, or MISSING_TOKEN.

    A token is ASCII; header bytes that are not arrive as text no request to auth can carry,
    so they are refused here, as auth would refuse them.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise missing_token()
    if not token.isascii():
        raise invalid_token()
    return token.strip()


async def authenticate(request: web.Request):
    """Validate the request's bearer token with auth; the session's identity or a PodiumError."""
    return await request.app[CONTEXT].clients.validate_token(bearer_token(request))


async def authenticate_socket(request: web.Request):
    """The identity behind a WebSocket upgrade: a `ticket` in the query (browsers), else the
    bearer token. A ticket is spent by this call, whatever happens to the upgrade next.
    """
    ticket = request.query.get("ticket")
    if ticket is None:
        return await authenticate(request)
    return await request.app[CONTEXT].clients.redeem_ticket(ticket)


def client_address(request: web.Request) -> str:
    """The address login limits count against: the peer, or the one a trusted proxy saw."""
    hops = request.app[CONTEXT].settings.trusted_proxy_hops
    return address_of(request.remote or "", request.headers.getall("X-Forwarded-For", []), hops)


def address_of(peer: str, forwarded: list[str], hops: int) -> str:
    """Each trusted proxy appends the address it received from to X-Forwarded-For, so the entry
    `hops` from the end is the last one that no client could have forged. With too few
    entries, or none trusted, the peer itself is the client.
    """
    if not hops:
        return peer
    entries = [part.strip() for header in forwarded for part in header.split(",")]
    if len(entries) >= hops and entries[-hops]:
        return entries[-hops]
    return peer
