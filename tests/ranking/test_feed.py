"""WatchBoard over real Redis and NATS: snapshots, coalesced updates, slices, period rolls."""

import asyncio
from datetime import date, timedelta

import grpc
import pytest
from podium.game.v1 import game_pb2
from podium.ranking.v1 import ranking_service_pb2 as pb

from ranking.feed import Watcher

# How long the coalescing test waits after the final change for a message that should not come.
QUIET_SECONDS = 0.5


async def publish(nats_client, names, board: str, period: str, seq: int) -> None:
    change = game_pb2.BoardChange(board=board, period=period, seq=seq)
    await nats_client.publish(names.board_changes_subject, change.SerializeToString())
    await nats_client.flush()


async def wait_until(condition, attempts: int = 200) -> bool:
    """Poll a condition that becomes true in the background; False if it never does."""
    for _ in range(attempts):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def view(seq: int, snapshot: bool = False, period: str = "p") -> pb.WatchBoardResponse:
    return pb.WatchBoardResponse(board="daily", period=period, seq=seq, snapshot=snapshot)


async def test_outbox_keeps_only_the_latest_view():
    watcher = Watcher(limit=10)

    for seq in range(1, 1001):
        watcher.offer(view(seq))
    taken = await watcher.next()

    assert taken.seq == 1000
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watcher.next(), QUIET_SECONDS)


async def test_outbox_keeps_the_snapshot_flag_when_an_update_overtakes_it():
    watcher = Watcher(limit=10)
    shared_update = view(2)

    watcher.offer(view(1, snapshot=True, period="p2"))
    watcher.offer(shared_update)
    taken = await watcher.next()

    assert (taken.seq, taken.snapshot) == (2, True)
    assert shared_update.snapshot is False


async def test_closing_an_outbox_ends_its_stream():
    watcher = Watcher(limit=10)
    watcher.offer(view(1))

    watcher.close()

    assert await watcher.next() is None


async def test_watch_starts_with_a_snapshot_of_the_current_period(ranking, boards, read_view):
    scores = dict(zip(boards.players(4), [4, 3, 2, 1], strict=True))
    await boards.put("daily", ranking.day, scores)
    seq = await boards.bump("daily")

    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=3))
    first = await read_view(call)
    call.cancel()

    assert first.snapshot is True
    assert (first.board, first.period, first.seq) == ("daily", ranking.day, seq)
    assert boards.rows(first.entries) == boards.ranked(scores)[:3]


async def test_a_board_change_pushes_the_new_ranks_and_seq(
    ranking, boards, nats_client, names, read_view, read_at
):
    a, b, c = boards.players(3)
    await boards.put("daily", ranking.day, {a: 10, b: 20})
    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=5))
    await read_view(call)

    await boards.put("daily", ranking.day, {c: 30, a: 25})
    seq = await boards.bump("daily")
    await publish(nats_client, names, "daily", ranking.day, seq)
    update = await read_at(call, seq)
    call.cancel()

    assert update.snapshot is False
    assert (update.period, update.seq) == (ranking.day, seq)
    assert boards.rows(update.entries) == [(1, c, 30), (2, a, 25), (3, b, 20)]


async def test_watchers_with_different_limits_each_get_their_slice(
    ranking, boards, nats_client, names, read_view, read_at
):
    scores = dict(zip(boards.players(6), [60, 50, 40, 30, 20, 10], strict=True))
    await boards.put("daily", ranking.day, scores)
    narrow = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=2))
    wide = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=5))
    narrow_first, wide_first = await read_view(narrow), await read_view(wide)

    (newcomer,) = boards.players(1)
    scores[newcomer] = 45
    await boards.put("daily", ranking.day, {newcomer: 45})
    seq = await boards.bump("daily")
    await publish(nats_client, names, "daily", ranking.day, seq)
    narrow_update, wide_update = await read_at(narrow, seq), await read_at(wide, seq)
    narrow.cancel()
    wide.cancel()

    assert boards.rows(narrow_first.entries) == boards.ranked(scores)[:2]
    assert len(wide_first.entries) == 5
    assert boards.rows(narrow_update.entries) == boards.ranked(scores)[:2]
    assert boards.rows(wide_update.entries) == boards.ranked(scores)[:5]
    assert narrow_update.seq == wide_update.seq == seq


async def test_a_burst_of_changes_is_coalesced_and_ends_on_the_final_state(
    serve_ranking, boards, nats_client, names, read_view
):
    (player,) = boards.players(1)
    async with serve_ranking(coalesce_ms=200) as ranking:
        call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
        await read_view(call)

        for score in range(1, 201):
            await boards.put("daily", ranking.day, {player: score})
            seq = await boards.bump("daily")
            change = game_pb2.BoardChange(board="daily", period=ranking.day, seq=seq)
            await nats_client.publish(names.board_changes_subject, change.SerializeToString())
        await nats_client.flush()
        updates = [await read_view(call)]
        while updates[-1].seq != seq:
            updates.append(await read_view(call))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call.read(), QUIET_SECONDS)
        call.cancel()

    assert len(updates) <= 20
    assert boards.rows(updates[-1].entries) == [(1, player, 200)]
    assert [u.seq for u in updates] == sorted({u.seq for u in updates})


async def test_an_undecodable_change_is_ignored(
    ranking, boards, nats_client, names, read_view, read_at
):
    (player,) = boards.players(1)
    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
    await read_view(call)

    await nats_client.publish(names.board_changes_subject, b"\xff\xff\xff not protobuf")
    await boards.put("daily", ranking.day, {player: 1})
    seq = await boards.bump("daily")
    await publish(nats_client, names, "daily", ranking.day, seq)
    update = await read_at(call, seq)
    call.cancel()

    assert (update.seq, boards.rows(update.entries)) == (seq, [(1, player, 1)])


async def test_a_change_whose_event_was_lost_still_reaches_watchers(
    ranking, boards, read_view, read_at
):
    (player,) = boards.players(1)
    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
    await read_view(call)

    await boards.put("daily", ranking.day, {player: 7})
    seq = await boards.bump("daily")
    update = await read_at(call, seq)
    call.cancel()

    assert (update.seq, boards.rows(update.entries)) == (seq, [(1, player, 7)])


async def test_a_new_period_is_pushed_as_a_snapshot(ranking, boards, read_view):
    old, new = boards.players(2)
    next_day = (date.fromisoformat(ranking.day) + timedelta(days=1)).isoformat()
    await boards.put("daily", ranking.day, {old: 1})
    await boards.put("daily", next_day, {new: 2})
    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=5))
    first = await read_view(call)

    ranking.clock.set_day(next_day)
    rolled = await read_view(call)
    call.cancel()

    assert (first.period, boards.rows(first.entries)) == (ranking.day, [(1, old, 1)])
    assert (rolled.snapshot, rolled.period) == (True, next_day)
    assert boards.rows(rolled.entries) == [(1, new, 2)]


async def test_cancelling_a_watch_removes_its_watcher_and_board_task(ranking, read_view):
    kept = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="global", limit=1))
    dropped = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
    await read_view(kept)
    await read_view(dropped)
    tasks_while_watching = ranking.feed.task_count

    dropped.cancel()
    daily_gone = await wait_until(lambda: ranking.feed.watching("daily") == 0)
    kept.cancel()
    global_gone = await wait_until(lambda: ranking.feed.watching("global") == 0)

    assert tasks_while_watching == 3
    assert daily_gone and global_gone
    assert await wait_until(lambda: ranking.feed.task_count == 1)


@pytest.mark.parametrize(
    ("board", "limit", "expected"),
    [
        ("monthly", 5, (grpc.StatusCode.NOT_FOUND, "UNKNOWN_BOARD")),
        ("daily", 0, (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_LIMIT")),
        ("daily", 101, (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_LIMIT")),
    ],
)
async def test_watch_refuses_an_unknown_board_or_bad_limit(
    ranking, board, limit, expected, rpc_error
):
    call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board=board, limit=limit))

    failure = await rpc_error(call.read())

    assert failure == expected
    assert ranking.feed.watching(board) == 0


async def test_the_first_change_of_a_quiet_board_goes_out_before_the_window_ends(
    serve_ranking, boards, nats_client, names, read_view, read_at
):
    """A 2-second window: once the board has been quiet for a window, a change is pushed at
    once; the next one waits for the window's end, counted from that push."""
    (player,) = boards.players(1)
    loop = asyncio.get_running_loop()
    async with serve_ranking(coalesce_ms=2000) as ranking:
        call = ranking.stub.WatchBoard(pb.WatchBoardRequest(board="daily", limit=1))
        await read_view(call)
        # Ranking announces its periods as it starts: let those windows pass.
        await asyncio.sleep(4.5)
        arrived = []
        for score in (1, 2):
            await boards.put("daily", ranking.day, {player: score})
            seq = await boards.bump("daily")
            sent = loop.time()
            await publish(nats_client, names, "daily", ranking.day, seq)
            view = await read_at(call, seq)
            arrived.append((loop.time() - sent, boards.rows(view.entries)))
        call.cancel()

    (first_wait, first_rows), (second_wait, second_rows) = arrived
    assert first_rows == [(1, player, 1)] and second_rows == [(1, player, 2)]
    assert first_wait < 1.0 < second_wait
