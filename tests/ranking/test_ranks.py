"""Exact ranks: ties, subscores, rank styles, windows, friends, paging, and ranks that survive
Redis losing everything. Each scenario states the ranks it expects."""

import asyncpg
import grpc
from podium.ranking.v1 import ranking_service_pb2 as pb

from infra.boards import boards as definitions

T = 1_800_000_000_000


def _entries(reply) -> list[tuple]:
    return [(e.rank, e.player_id, e.score) for e in reply.entries]


async def test_equal_scores_rank_by_who_reached_them_first_also_after_a_rebuild(ranking, boards):
    """a reaches 50 at t=2, b at t=1: b ranks higher, though a's id sorts first."""
    a, b = boards.players(2)
    await boards.put("daily", ranking.day, {a: 50, b: 50}, reached={a: T + 2, b: T + 1})
    request = pb.GetTopRequest(board="daily", period=ranking.day, limit=10)

    before = await ranking.stub.GetTop(request)
    await boards.wipe("daily", ranking.day)
    after = await ranking.stub.GetTop(request)

    assert _entries(before) == _entries(after) == [(1, b, 50), (2, a, 50)]


async def test_ten_players_windows_around_a_player(ranking, boards):
    """Scores 100..10: rows=4 around the 2nd gives ranks 1-4, around the 10th 7-10;
    radius 2 around the 5th gives 3-7."""
    players = boards.players(10)
    await boards.put("daily", ranking.day, dict(zip(players, range(100, 0, -10), strict=True)))

    async def ranks(player: str, **window) -> list[int]:
        request = pb.GetAroundRequest(
            board="daily", period=ranking.day, player_id=player, **window
        )
        return [e.rank for e in (await ranking.stub.GetAround(request)).entries]

    assert await ranks(players[1], rows=4) == [1, 2, 3, 4]
    assert await ranks(players[9], rows=4) == [7, 8, 9, 10]
    assert await ranks(players[4], radius=2) == [3, 4, 5, 6, 7]
    assert await ranks(players[0], rows=101) == list(range(1, 11))


async def test_competition_ranks_share_a_place_and_skip_after_it(ranking, boards):
    """best_run ranks 1,1,3 and compares the combo (subscore) after the score."""
    a, b, c, d = boards.players(4)
    await boards.clear("best_run", "all")
    await boards.put(
        "best_run", "all", {a: 90, b: 100, c: 100, d: 100}, subscores={b: 5, c: 5, d: 7}
    )

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="best_run", limit=10))
    around = await ranking.stub.GetAround(
        pb.GetAroundRequest(board="best_run", player_id=c, radius=0)
    )

    assert [(e.rank, e.player_id, e.subscore) for e in top.entries] == [
        (1, d, 7),
        (2, b, 5),
        (2, c, 5),
        (4, a, 0),
    ]
    assert [(e.rank, e.player_id) for e in around.entries] == [(2, c)]


async def test_dense_ranks_share_a_place_and_go_on_from_the_next(ranking, boards):
    """fastest: lowest first, then lowest subscore; dense ranks 1,1,2."""
    a, b, c, d = boards.players(4)
    await boards.clear("fastest", "all")
    await boards.put("fastest", "all", {a: 40, b: 40, c: 40, d: 55}, subscores={c: 1})

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="fastest", limit=10))
    mid = await ranking.stub.GetAround(pb.GetAroundRequest(board="fastest", player_id=b, radius=5))

    assert [(e.rank, e.player_id) for e in top.entries] == [(1, a), (1, b), (2, c), (3, d)]
    assert [e.rank for e in mid.entries] == [1, 1, 2, 3]


async def test_friends_are_ranked_among_themselves(ranking, boards):
    a, b, c, d, e = boards.players(5)
    await boards.put("daily", ranking.day, {a: 50, b: 40, c: 30, d: 20, e: 10})

    reply = await ranking.stub.GetPlayers(
        pb.GetPlayersRequest(board="daily", period=ranking.day, player_ids=[e, c, b.upper(), c])
    )

    assert [(x.rank, x.board_rank, x.player_id) for x in reply.entries] == [
        (1, 2, b),
        (2, 3, c),
        (3, 5, e),
    ]


async def test_one_players_rank_score_and_metadata(ranking, boards, rpc_error):
    a, b = boards.players(2)
    await boards.clear("best_run", "all")
    await boards.put(
        "best_run", "all", {a: 7, b: 9}, subscores={a: 3}, metadata={a: '{"tag":"A"}'}
    )

    reply = await ranking.stub.GetPlayerRank(
        pb.GetPlayerRankRequest(board="best_run", player_id=a)
    )
    absent = ranking.stub.GetPlayerRank(
        pb.GetPlayerRankRequest(board="best_run", player_id=boards.players(1)[0])
    )

    entry = reply.entry
    assert (entry.rank, entry.score, entry.subscore, entry.metadata_json) == (
        2,
        7,
        3,
        '{"tag":"A"}',
    )
    assert await rpc_error(absent) == (grpc.StatusCode.NOT_FOUND, "PLAYER_NOT_RANKED")


async def test_paging_a_pinned_board_sees_each_player_once_while_it_changes(
    ranking, boards, rpc_error
):
    """30 players, pages of 10; before page 2 the 25th jumps to first. Pinned pages show the
    board as it was; unpinned, page 2 is refused BOARD_MOVED."""
    players = boards.players(30)
    await boards.put("daily", ranking.day, dict(zip(players, range(300, 0, -10), strict=True)))
    first = pb.GetTopRequest(board="daily", period=ranking.day, limit=10)

    pinned = await ranking.stub.GetTop(pb.GetTopRequest(**_fields(first), pin=True))
    loose = await ranking.stub.GetTop(first)
    await boards.put("daily", ranking.day, {players[24]: 1000})
    seen = [e.player_id for e in pinned.entries]
    cursor = pinned.next_cursor
    while cursor:
        page = await ranking.stub.GetTop(pb.GetTopRequest(**_fields(first), cursor=cursor))
        seen += [e.player_id for e in page.entries]
        cursor = page.next_cursor
    moved = await rpc_error(
        ranking.stub.GetTop(pb.GetTopRequest(**_fields(first), cursor=loose.next_cursor))
    )

    assert seen == players
    assert (pinned.total, loose.total) == (30, 30)
    assert moved == (grpc.StatusCode.FAILED_PRECONDITION, "BOARD_MOVED")


async def test_a_cursor_of_another_board_or_made_up_is_refused(ranking, boards, rpc_error):
    players = boards.players(3)
    await boards.put("daily", ranking.day, dict(zip(players, [3, 2, 1], strict=True)))
    page = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=1))

    elsewhere = pb.GetTopRequest(board="global", limit=1, cursor=page.next_cursor)
    made_up = pb.GetTopRequest(board="daily", period=ranking.day, limit=1, cursor="bm9wZQ")

    assert await rpc_error(ranking.stub.GetTop(elsewhere)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CURSOR",
    )
    assert (await rpc_error(ranking.stub.GetTop(made_up)))[1] == "INVALID_CURSOR"


async def test_after_redis_loses_everything_ranks_equal_postgres_window_functions(
    ranking, boards, names, shard_dsns
):
    """Every board of the test file, with ties, subscores and both orders: once the namespace's
    Redis keys are gone (what FLUSHALL does to it), ranking rebuilds each period and its ranks
    equal row_number(), rank() or dense_rank() over the rows of every shard database."""
    players = boards.players(40)
    periods = {}
    for n, board in enumerate(sorted(definitions())):
        period = _period_of(board, ranking)
        periods[board] = period
        scores = {p: (i * 7 + n) % 9 * 10 for i, p in enumerate(players)}
        subscores = {
            p: i % 3 if definitions()[board].subscore else 0 for i, p in enumerate(players)
        }
        reached = {p: T + (i * 13) % 5 for i, p in enumerate(players)}
        await boards.put(board, period, scores, subscores=subscores, reached=reached)

    keys = [key async for key in boards.redis.scan_iter(match=f"{names.namespace}:*")]
    await boards.redis.delete(*keys)

    for board, period in periods.items():
        shown = []
        cursor = ""
        while True:
            page = await ranking.stub.GetTop(
                pb.GetTopRequest(board=board, period=period, limit=100, cursor=cursor, pin=True)
            )
            shown += [(e.rank, e.player_id, e.score, e.subscore) for e in page.entries]
            cursor = page.next_cursor
            if not cursor:
                break
        assert shown == await _window_ranks(shard_dsns, board, period), board


async def _window_ranks(shard_dsns: list[str], board: str, period: str) -> list[tuple]:
    """The board period's ranks by the board's rule, computed by Postgres over all shards."""
    spec = definitions()[board]
    order = "DESC" if spec.order == "desc" else "ASC"
    sub = "DESC" if spec.subscore == "desc" else "ASC"
    value = f"score {order}" + (f", subscore {sub}" if spec.subscore else "")
    function = {"ordinal": "row_number()", "competition": "rank()", "dense": "dense_rank()"}
    window = f"{value}, reached_ms, player_id" if spec.ranks == "ordinal" else value

    conn = await asyncpg.connect(shard_dsns[0])
    try:
        await conn.execute(
            "CREATE TEMP TABLE everyone AS SELECT player_id, score, subscore, reached_ms"
            " FROM board_scores WHERE board = $1 AND period = $2",
            board,
            period,
        )
        for dsn in shard_dsns[1:]:
            other = await asyncpg.connect(dsn)
            try:
                rows = await other.fetch(
                    "SELECT player_id, score, subscore, reached_ms FROM board_scores"
                    " WHERE board = $1 AND period = $2",
                    board,
                    period,
                )
            finally:
                await other.close()
            await conn.executemany("INSERT INTO everyone VALUES ($1, $2, $3, $4)", rows)
        rows = await conn.fetch(
            f"SELECT {function[spec.ranks]} OVER (ORDER BY {window}) AS rank,"
            " player_id::text, score, subscore FROM everyone"
            f" ORDER BY {value}, reached_ms, player_id"
        )
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


def _period_of(board: str, ranking) -> str:
    return definitions()[board].period_at(ranking.clock())


def _fields(request: pb.GetTopRequest) -> dict:
    return {"board": request.board, "period": request.period, "limit": request.limit}
