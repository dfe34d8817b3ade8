"""RebuildBoard: Redis made equal to board_scores in Postgres, atomically, and announced."""

import asyncio

import grpc
import pytest
from podium.game.v1 import game_pb2
from podium.ranking.v1 import ranking_service_pb2 as pb

from ranking.rebuild import CHUNK_ROWS


async def scratch_keys(boards, board: str, period: str) -> list[bytes]:
    pattern = f"{boards.names.board_key(board, period)}:scratch:*"
    return [key async for key in boards.redis.scan_iter(match=pattern)]


async def test_rebuild_holds_exactly_the_postgres_rows(ranking, boards):
    kept, changed, stale, other = boards.players(4)
    truth = {kept: 30, changed: 50}
    await boards.score_rows("daily", ranking.day, truth)
    await boards.score_rows("daily", "2200-01-01", {other: 99})
    await boards.account(changed, "Bea")
    await boards.show("daily", ranking.day, {kept: 30, changed: 10, stale: 40})
    seq_before = await boards.seq("daily")

    rebuilt = await ranking.stub.RebuildBoard(
        pb.RebuildBoardRequest(board="daily", period=ranking.day)
    )
    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=10))

    assert (rebuilt.members, rebuilt.seq) == (2, seq_before + 1)
    assert boards.rows(top.entries) == boards.ranked(truth)
    assert top.seq == rebuilt.seq
    assert await boards.username(changed) == "Bea"
    assert await scratch_keys(boards, "daily", ranking.day) == []
    assert await boards.redis.ttl(boards.names.board_key("daily", ranking.day)) == -1


async def test_rebuild_of_a_period_without_rows_empties_it(ranking, boards):
    (stale,) = boards.players(1)
    await boards.show("daily", ranking.day, {stale: 5})
    seq_before = await boards.seq("daily")

    rebuilt = await ranking.stub.RebuildBoard(
        pb.RebuildBoardRequest(board="daily", period=ranking.day)
    )

    assert (rebuilt.members, rebuilt.seq) == (0, seq_before + 1)
    assert not await boards.redis.exists(boards.names.board_key("daily", ranking.day))


async def test_rebuild_with_an_empty_period_rebuilds_the_current_one(ranking, boards):
    (player,) = boards.players(1)
    await boards.score_rows("daily", ranking.day, {player: 12})

    rebuilt = await ranking.stub.RebuildBoard(pb.RebuildBoardRequest(board="daily"))
    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=5))

    assert rebuilt.members == 1
    assert boards.rows(top.entries) == [(1, player, 12)]


async def test_rebuild_writes_boards_larger_than_one_chunk(ranking, boards):
    count = CHUNK_ROWS * 2 + 7
    truth = dict(zip(boards.players(count), range(count), strict=True))
    await boards.score_rows("daily", ranking.day, truth)

    rebuilt = await ranking.stub.RebuildBoard(
        pb.RebuildBoardRequest(board="daily", period=ranking.day)
    )
    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=100))

    assert rebuilt.members == count
    assert await boards.redis.zcard(boards.names.board_key("daily", ranking.day)) == count
    assert boards.rows(top.entries) == boards.ranked(truth)[:100]


async def test_rebuild_announces_the_change_to_watchers(
    ranking, boards, nats_client, names, read_view, read_at
):
    (player,) = boards.players(1)
    changes = asyncio.Queue()

    async def collect(msg) -> None:
        await changes.put(msg.data)

    subscription = await nats_client.subscribe(names.board_changes_subject, cb=collect)
    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=3))
    await read_view(call)
    await boards.score_rows("daily", ranking.day, {player: 8})

    rebuilt = await ranking.stub.RebuildBoard(pb.RebuildBoardRequest(board="daily"))
    update = await read_at(call, rebuilt.seq)
    call.cancel()
    announced = []
    while not announced or announced[-1].seq < rebuilt.seq:
        change = game_pb2.BoardChange.FromString(await asyncio.wait_for(changes.get(), 10))
        if change.board == "daily":
            announced.append(change)
    await subscription.unsubscribe()

    last = announced[-1]
    assert (last.board, last.period, last.seq) == ("daily", ranking.day, rebuilt.seq)
    assert (update.seq, boards.rows(update.entries)) == (rebuilt.seq, [(1, player, 8)])


async def test_rebuild_refuses_a_score_redis_cannot_hold_exactly(ranking, boards, rpc_error):
    fine, huge = boards.players(2)
    await boards.score_rows("daily", ranking.day, {fine: 1, huge: 2**53})
    await boards.show("daily", ranking.day, {fine: 1})
    seq_before = await boards.seq("daily")

    failure = await rpc_error(
        ranking.stub.RebuildBoard(pb.RebuildBoardRequest(board="daily", period=ranking.day))
    )

    assert failure == (grpc.StatusCode.FAILED_PRECONDITION, "SCORE_OUT_OF_RANGE")
    assert await boards.members("daily", ranking.day) == [fine]
    assert await boards.seq("daily") == seq_before
    assert await scratch_keys(boards, "daily", ranking.day) == []


@pytest.mark.parametrize(
    ("board", "period", "expected"),
    [
        ("monthly", "", (grpc.StatusCode.NOT_FOUND, "UNKNOWN_BOARD")),
        ("daily", "all", (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PERIOD")),
        ("global", "2024-01-01", (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PERIOD")),
    ],
)
async def test_rebuild_refuses_an_unknown_board_or_bad_period(
    ranking, board, period, expected, rpc_error
):
    request = pb.RebuildBoardRequest(board=board, period=period)

    failure = await rpc_error(ranking.stub.RebuildBoard(request))

    assert failure == expected


async def test_a_write_landing_during_a_rebuild_is_kept(ranking, boards):
    """The rebuild copies a Postgres snapshot; a worker's newer standing that lands in Redis
    meanwhile must survive the swap, and an older one must not come back."""
    count = CHUNK_ROWS * 5
    players = boards.players(count)
    await boards.score_rows("daily", ranking.day, dict.fromkeys(players, 1))
    mark = boards.keys("daily", ranking.day).rebuild

    rebuilding = asyncio.ensure_future(
        ranking.stub.RebuildBoard(pb.RebuildBoardRequest(board="daily", period=ranking.day))
    )
    while not await boards.redis.exists(mark):
        assert not rebuilding.done(), "the rebuild ended before a write could land during it"
        await asyncio.sleep(0.001)
    await boards.show("daily", ranking.day, {players[-1]: 500})
    await rebuilding
    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=2))

    assert boards.rows(top.entries)[0] == (1, players[-1], 500)
    assert top.entries[1].score == 1
    assert await boards.redis.zcard(boards.keys("daily", ranking.day).ranked) == count


async def test_a_period_whose_keys_expired_out_of_step_is_rebuilt_not_misread(ranking, boards):
    """Closed periods expire key by key; a ranked set whose index is gone reads as not built."""
    players = boards.players(3)
    truth = dict(zip(players, [3, 2, 1], strict=True))
    await boards.put("daily", ranking.day, truth)
    await boards.redis.delete(boards.keys("daily", ranking.day).index)

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=5))

    assert boards.rows(top.entries) == boards.ranked(truth)
