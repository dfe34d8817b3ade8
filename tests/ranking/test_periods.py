"""Periods: each reset recorded once across replicas and restarts, closing, and past periods
readable with ranks after Redis has let them go."""

import asyncio
from datetime import date, timedelta

import pytest
import structlog
from podium.ranking.v1 import ranking_service_pb2 as pb

from ranking import periods

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def quick_ticks(monkeypatch):
    monkeypatch.setattr(periods, "TICK_SECONDS", 0.05)


def _midnight_after(day: str) -> int:
    """Unix ms of the midnight that ends `day`."""
    start = date.fromisoformat(day) - date(1970, 1, 1)
    return (start + timedelta(days=1)).days * DAY_MS


async def _listed(stub, board: str) -> dict[str, tuple[bool, bool]]:
    reply = await stub.ListPeriods(pb.ListPeriodsRequest(board=board, limit=100))
    return {p.period: (p.opened_at_unix_ms > 0, p.closed_at_unix_ms > 0) for p in reply.periods}


async def test_a_reset_across_a_restart_and_two_replicas_happens_once(serve_ranking, day):
    midnight = _midnight_after(day)
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()

    with structlog.testing.capture_logs() as logs:
        async with serve_ranking() as before:
            before.clock.ms = midnight - 100
            await asyncio.sleep(0.3)
        async with serve_ranking() as one, serve_ranking() as two:
            for replica in (one, two):
                replica.clock.ms = midnight + 100
            await asyncio.sleep(0.5)
            listed = await _listed(one.stub, "daily")

    resets = [e["period"] for e in logs if e["event"] == "board_reset" and e["board"] == "daily"]
    assert (resets.count(day), resets.count(next_day)) == (1, 1)
    assert listed[day] == (True, False)
    assert listed[next_day] == (True, False)


async def test_a_period_closes_after_its_grace_and_stays_readable(serve_ranking, boards, day):
    midnight = _midnight_after(day)
    players = boards.players(3)
    await boards.put("daily", day, dict(zip(players, [30, 20, 10], strict=True)))

    async with serve_ranking(period_retention_seconds=60) as ranking:
        ranking.clock.ms = midnight + 300_000
        await asyncio.sleep(0.3)
        still_open = await _listed(ranking.stub, "daily")
        ranking.clock.ms = midnight + 300_001
        await asyncio.sleep(0.3)
        closed = await _listed(ranking.stub, "daily")
        ttl = await boards.redis.ttl(boards.keys("daily", day).ranked)
        await boards.wipe("daily", day)
        past = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=day, limit=5))

    assert still_open[day] == (True, False)
    assert closed[day] == (True, True)
    assert 0 < ttl <= 60
    assert boards.rows(past.entries) == boards.ranked(
        dict(zip(players, [30, 20, 10], strict=True))
    )


async def test_list_periods_refuses_an_unknown_board_or_bad_limit(ranking, rpc_error):
    unknown = ranking.stub.ListPeriods(pb.ListPeriodsRequest(board="nope", limit=5))
    zero = ranking.stub.ListPeriods(pb.ListPeriodsRequest(board="daily", limit=0))

    assert (await rpc_error(unknown))[1] == "UNKNOWN_BOARD"
    assert (await rpc_error(zero))[1] == "INVALID_LIMIT"
