"""Tickets for browser sockets, against real Redis: one use, a short life, bound to a session."""

import asyncio
import uuid

import pytest

from auth.tickets import TICKET_TTL_SECONDS, Tickets, issue_ticket, redeem_ticket
from infra.errors import PodiumError


@pytest.fixture
def tickets(redis_client, names) -> Tickets:
    return Tickets(redis_client, names)


async def _session_token(sessions, tokens) -> tuple[str, str, str]:
    player_id = str(uuid.uuid4())
    opened = await sessions.open(player_id, "ada")
    return player_id, opened.session_key, tokens.issue(player_id, opened.session_key, "ada").token


async def _refusal(call) -> str:
    with pytest.raises(PodiumError) as caught:
        await call
    return caught.value.code


async def test_a_ticket_names_its_session_once(deps, sessions, tokens, tickets):
    player_id, session_key, token = await _session_token(sessions, tokens)
    ticket = await issue_ticket(deps, tickets, token)

    holder = await redeem_ticket(deps, tickets, ticket)
    assert (holder.player_id, holder.session_key, holder.username) == (
        player_id,
        session_key,
        "ada",
    )
    assert await _refusal(redeem_ticket(deps, tickets, ticket)) == "INVALID_TICKET"


async def test_two_redeemers_racing_with_one_ticket_cannot_both_win(
    deps, sessions, tokens, tickets
):
    _, _, token = await _session_token(sessions, tokens)
    ticket = await issue_ticket(deps, tickets, token)

    outcomes = await asyncio.gather(
        *(redeem_ticket(deps, tickets, ticket) for _ in range(1000)), return_exceptions=True
    )
    assert sum(not isinstance(outcome, Exception) for outcome in outcomes) == 1


async def test_a_ticket_is_kept_by_its_digest_and_expires(
    deps, sessions, tokens, tickets, redis_client, names
):
    _, _, token = await _session_token(sessions, tokens)
    ticket = await issue_ticket(deps, tickets, token)

    keys = [key async for key in redis_client.scan_iter(match=names.ticket_key("*"))]
    assert keys and all(ticket.encode() not in key for key in keys)
    ttls = [await redis_client.ttl(key) for key in keys]
    assert all(0 < ttl <= TICKET_TTL_SECONDS for ttl in ttls)


async def test_a_ticket_outlived_by_its_session_opens_nothing(deps, sessions, tokens, tickets):
    player_id, session_key, token = await _session_token(sessions, tokens)
    ticket = await issue_ticket(deps, tickets, token)
    await sessions.end(session_key, player_id)

    assert await _refusal(redeem_ticket(deps, tickets, ticket)) == "SESSION_ENDED"


async def test_no_ticket_for_an_ended_session_or_a_forged_token(deps, sessions, tokens, tickets):
    player_id, session_key, token = await _session_token(sessions, tokens)
    await sessions.end(session_key, player_id)

    assert await _refusal(issue_ticket(deps, tickets, token)) == "SESSION_ENDED"
    assert await _refusal(issue_ticket(deps, tickets, token[:-4] + "AAAA")) == "INVALID_TOKEN"


@pytest.mark.parametrize("ticket", ["", "x" * 65, "ticket\n", "ü" * 8, "a" * 32])
async def test_made_up_tickets_are_refused_alike(deps, tickets, ticket):
    assert await _refusal(redeem_ticket(deps, tickets, ticket)) == "INVALID_TICKET"


async def test_a_session_gets_thirty_tickets_a_half_minute(deps, sessions, tokens, tickets):
    _, _, token = await _session_token(sessions, tokens)
    for _ in range(30):
        await issue_ticket(deps, tickets, token)

    with pytest.raises(PodiumError) as refused:
        await issue_ticket(deps, tickets, token)
    assert refused.value.code == "TICKET_RATE_LIMITED"
    assert 0 < refused.value.retry_after_seconds <= 30
    _, _, other = await _session_token(sessions, tokens)
    assert await issue_ticket(deps, tickets, other)
