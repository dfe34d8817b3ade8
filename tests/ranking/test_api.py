"""GetTop and GetAround over real Redis and Postgres: ordering, bounds, errors, usernames."""

import grpc
import pytest
from podium.ranking.v1 import ranking_service_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def test_top_ranks_highest_score_first_and_ties_by_player_id(ranking, boards):
    a, b, c, d, e = boards.players(5)
    scores = {e: 70, c: 50, a: 50, d: 10, b: 70}
    await boards.put("daily", ranking.day, scores)
    seq = await boards.bump("daily")

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=10))

    assert boards.rows(top.entries) == [(1, b, 70), (2, e, 70), (3, a, 50), (4, c, 50), (5, d, 10)]
    assert (top.board, top.period, top.seq) == ("daily", ranking.day, seq)


async def test_top_returns_at_most_limit_entries(ranking, boards):
    scores = dict(zip(boards.players(4), [40, 30, 20, 10], strict=True))
    await boards.put("daily", ranking.day, scores)

    two = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=2))
    all_ = await ranking.stub.GetTop(
        pb.GetTopRequest(board="daily", period=ranking.day, limit=100)
    )

    assert boards.rows(two.entries) == boards.ranked(scores)[:2]
    assert boards.rows(all_.entries) == boards.ranked(scores)


async def test_top_of_an_empty_period_has_no_entries(ranking):
    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=5))

    assert list(top.entries) == []
    assert top.period == ranking.day


async def test_scores_up_to_two_to_the_53_minus_one_come_back_exact(ranking, boards):
    high, low = boards.players(2)
    biggest = 2**53 - 1
    await boards.put("daily", ranking.day, {high: biggest, low: -biggest})

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=2))

    assert boards.rows(top.entries) == [(1, high, biggest), (2, low, -biggest)]


async def test_empty_period_means_the_current_one(ranking, boards):
    (player,) = boards.players(1)
    await boards.put("daily", ranking.day, {player: 5})

    daily = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", limit=1))
    everlasting = await ranking.stub.GetTop(pb.GetTopRequest(board="global", limit=1))

    assert daily.period == ranking.day
    assert boards.rows(daily.entries) == [(1, player, 5)]
    assert everlasting.period == "all"


@pytest.mark.parametrize("limit", [0, -1, 101, 1000])
async def test_top_refuses_a_limit_outside_1_to_100(ranking, limit, rpc_error):
    request = pb.GetTopRequest(board="daily", period=ranking.day, limit=limit)

    failure = await rpc_error(ranking.stub.GetTop(request))

    assert failure == (INVALID, "INVALID_LIMIT")


@pytest.mark.parametrize("board", ["", "monthly", "GLOBAL", "daily "])
async def test_an_unknown_board_is_not_found(ranking, board, boards, rpc_error):
    top = ranking.stub.GetTop(pb.GetTopRequest(board=board, limit=1))
    around = ranking.stub.GetAround(
        pb.GetAroundRequest(board=board, player_id=boards.players(1)[0], radius=1)
    )

    assert await rpc_error(top) == (NOT_FOUND, "UNKNOWN_BOARD")
    assert await rpc_error(around) == (NOT_FOUND, "UNKNOWN_BOARD")


@pytest.mark.parametrize(
    ("board", "period"),
    [
        ("global", "2024-01-01"),
        ("global", "ALL"),
        ("daily", "all"),
        ("daily", "2024-13-01"),
        ("daily", "2024-02-30"),
        ("daily", "2024-1-5"),
        ("daily", "20240105"),
        ("daily", "2024-01-05T00:00"),
        ("daily", "yesterday"),
    ],
)
async def test_a_period_the_board_never_has_is_refused(ranking, board, period, boards, rpc_error):
    top = ranking.stub.GetTop(pb.GetTopRequest(board=board, period=period, limit=1))
    around = ranking.stub.GetAround(
        pb.GetAroundRequest(board=board, period=period, player_id=boards.players(1)[0], radius=1)
    )

    assert await rpc_error(top) == (INVALID, "INVALID_PERIOD")
    assert await rpc_error(around) == (INVALID, "INVALID_PERIOD")


async def test_around_a_player_in_the_middle_spans_radius_each_side(ranking, boards):
    scores = dict(zip(boards.players(11), range(110, 0, -10), strict=True))
    expected = boards.ranked(scores)
    centre = expected[5][1]
    await boards.put("daily", ranking.day, scores)
    seq = await boards.bump("daily")

    around = await ranking.stub.GetAround(
        pb.GetAroundRequest(board="daily", period=ranking.day, player_id=centre, radius=2)
    )

    assert boards.rows(around.entries) == expected[3:8]
    assert (around.board, around.period, around.seq) == ("daily", ranking.day, seq)


async def test_around_a_player_near_the_top_is_clipped_at_rank_1(ranking, boards):
    scores = dict(zip(boards.players(8), range(8, 0, -1), strict=True))
    expected = boards.ranked(scores)
    await boards.put("daily", ranking.day, scores)

    around = await ranking.stub.GetAround(
        pb.GetAroundRequest(board="daily", period=ranking.day, player_id=expected[1][1], radius=3)
    )

    assert boards.rows(around.entries) == expected[0:5]


async def test_around_with_radius_0_is_the_player_alone(ranking, boards):
    scores = dict(zip(boards.players(3), [3, 2, 1], strict=True))
    expected = boards.ranked(scores)
    await boards.put("daily", ranking.day, scores)

    around = await ranking.stub.GetAround(
        pb.GetAroundRequest(board="daily", period=ranking.day, player_id=expected[2][1])
    )

    assert boards.rows(around.entries) == [expected[2]]


async def test_around_accepts_an_upper_case_player_id(ranking, boards):
    (player,) = boards.players(1)
    await boards.put("daily", ranking.day, {player: 9})

    around = await ranking.stub.GetAround(
        pb.GetAroundRequest(board="daily", period=ranking.day, player_id=player.upper())
    )

    assert boards.rows(around.entries) == [(1, player, 9)]


async def test_around_ranks_equal_top_ranks_for_every_player(ranking, boards):
    scores = dict(zip(boards.players(12), [5, 9, 5, 1, 9, 9, 0, 3, 5, 7, 7, 2], strict=True))
    await boards.put("daily", ranking.day, scores)
    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=50))

    arounds = [
        await ranking.stub.GetAround(
            pb.GetAroundRequest(board="daily", period=ranking.day, player_id=pid, radius=50)
        )
        for pid in scores
    ]

    assert boards.rows(top.entries) == boards.ranked(scores)
    for around in arounds:
        assert boards.rows(around.entries) == boards.rows(top.entries)


async def test_around_a_player_not_on_the_board_is_not_found(ranking, boards, rpc_error):
    present, absent = boards.players(2)
    await boards.put("daily", ranking.day, {present: 1})
    request = pb.GetAroundRequest(board="daily", period=ranking.day, player_id=absent, radius=1)

    failure = await rpc_error(ranking.stub.GetAround(request))

    assert failure == (NOT_FOUND, "PLAYER_NOT_RANKED")


@pytest.mark.parametrize("player_id", ["", "player-1", "1234", "not a uuid at all"])
async def test_around_refuses_a_player_id_that_is_not_a_uuid(ranking, player_id, rpc_error):
    request = pb.GetAroundRequest(board="daily", period=ranking.day, player_id=player_id)

    failure = await rpc_error(ranking.stub.GetAround(request))

    assert failure == (INVALID, "INVALID_PLAYER_ID")


@pytest.mark.parametrize("radius", [-1, 51, 10_000])
async def test_around_refuses_a_radius_outside_0_to_50(ranking, boards, radius, rpc_error):
    (player,) = boards.players(1)
    await boards.put("daily", ranking.day, {player: 1})
    request = pb.GetAroundRequest(
        board="daily", period=ranking.day, player_id=player, radius=radius
    )

    failure = await rpc_error(ranking.stub.GetAround(request))

    assert failure == (INVALID, "INVALID_RADIUS")


async def test_usernames_come_from_the_hash(ranking, boards):
    (player,) = boards.players(1)
    await boards.redis.hset(boards.names.usernames_key, player, "cached_name")
    await boards.put("daily", ranking.day, {player: 3})

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=1))

    assert top.entries[0].username == "cached_name"


async def test_a_username_missing_from_the_hash_is_read_from_postgres_and_cached(ranking, boards):
    registered, unknown = boards.players(2)
    await boards.account(registered, "Alice")
    await boards.put("daily", ranking.day, {registered: 2, unknown: 1})

    top = await ranking.stub.GetTop(pb.GetTopRequest(board="daily", period=ranking.day, limit=2))
    around = await ranking.stub.GetAround(
        pb.GetAroundRequest(board="daily", period=ranking.day, player_id=unknown, radius=1)
    )

    assert [entry.username for entry in top.entries] == ["Alice", ""]
    assert [entry.username for entry in around.entries] == ["Alice", ""]
    assert await boards.username(registered) == "Alice"
    assert await boards.username(unknown) is None
