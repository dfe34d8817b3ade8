"""REST board reads over the whole stack: exact ranks, subscores, metadata, friends, periods,
pages that stay whole while the board moves, and every bad input with its code.

The runs fixture plays `run` actions only, which score on best_run alone; the paging test plays
`score` on global alone, so the two never see each other's players.
"""

import asyncio
import time
import uuid
from urllib.parse import quote

import aiohttp
import pytest

from devstack.client import PlayerClient, ProtocolError

PASSWORD = "correct horse battery"

# Runs per player, (score, combo, tag), in the order played. best_run keeps each player's best
# (score, then combo) and ranks equal runs alike (1, 1, 3); equal runs list the earlier first.
RUNS = {
    "a": [(500, 3, "alpha")],
    "b": [(500, 3, None)],
    "c": [(500, 1, None)],
    "d": [(400, 9, None)],
    "e": [(300, 0, "e"), (200, 50, None)],
    "f": [(100, 2, None)],
    "g": [],
}
RANKS = {"a": 1, "b": 1, "c": 3, "d": 4, "e": 5, "f": 6}


async def _join(http: aiohttp.ClientSession, url: str) -> PlayerClient:
    player = PlayerClient(http, url)
    player.username = "r" + uuid.uuid4().hex[:12]
    await player.register(player.username, PASSWORD)
    await player.login(player.username, PASSWORD)
    await player.connect()
    return player


async def _play(player: PlayerClient, action: str, params: dict) -> None:
    result = await player.play(action, params)
    assert result["status"] == "applied", result


@pytest.fixture(scope="module")
async def runners(stack):
    """Seven players, a to g, whose runs are on best_run as RUNS says (g has none)."""
    async with aiohttp.ClientSession() as http:
        joined = await asyncio.gather(*(_join(http, stack.url) for _ in RUNS))
        made = dict(zip(RUNS, joined, strict=True))
        for name, runs in RUNS.items():
            for score, combo, tag in runs:
                params = {"score": score, "combo": combo} | ({"tag": tag} if tag else {})
                await _play(made[name], "run", params)
        yield made

        for player in made.values():
            await player.close()


def _rows(body: dict, *fields: str) -> list[tuple]:
    return [tuple(entry[field] for field in fields) for entry in body["entries"]]


def _ids(runners: dict, names: str) -> list[str]:
    return [runners[name].player_id for name in names]


async def test_boards_lists_each_board_with_its_rules_and_current_period(runners):
    reply = await runners["a"].call("GET", "/v1/boards")

    listed = {board["id"]: board for board in reply["boards"]}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert set(listed) == {
        "global",
        "daily",
        "weekly",
        "best_run",
        "fastest",
        "hourly_set",
        "penalties",
    }
    assert listed["best_run"] == {
        "id": "best_run",
        "order": "desc",
        "operator": "best",
        "reset": "never",
        "subscore": "desc",
        "ranks": "competition",
        "period": "all",
    }
    assert listed["daily"]["period"] == today and listed["daily"]["subscore"] is None
    assert listed["fastest"]["order"] == "asc" and listed["fastest"]["ranks"] == "dense"
    assert listed["hourly_set"]["reset"] == "0 * * * *"
    assert listed["hourly_set"]["period"] == time.strftime("%Y-%m-%dT%H:00Z", time.gmtime())
    assert listed["penalties"]["period"] == today[:7]


async def test_top_shows_competition_ranks_subscores_and_metadata(runners):
    top = await runners["a"].call("GET", "/v1/boards/best_run/top?limit=100")

    assert _rows(top, "rank", "player_id", "score", "subscore", "metadata") == [
        (1, runners["a"].player_id, 500, 3, {"combo": 3, "tag": "alpha"}),
        (1, runners["b"].player_id, 500, 3, {"combo": 3}),
        (3, runners["c"].player_id, 500, 1, {"combo": 1}),
        (4, runners["d"].player_id, 400, 9, {"combo": 9}),
        (5, runners["e"].player_id, 300, 0, {"combo": 0, "tag": "e"}),
        (6, runners["f"].player_id, 100, 2, {"combo": 2}),
    ]
    assert top["entries"][0]["username"] == runners["a"].username
    assert (top["board"], top["period"], top["total"], top["next_cursor"]) == (
        "best_run",
        "all",
        6,
        "",
    )


async def test_top_pages_follow_their_cursor_to_the_end(runners):
    first = await runners["a"].call("GET", "/v1/boards/best_run/top?limit=4")
    cursor = quote(first["next_cursor"])
    second = await runners["a"].call("GET", f"/v1/boards/best_run/top?limit=4&cursor={cursor}")

    assert _rows(first, "rank") == [(1,), (1,), (3,), (4,)]
    assert _rows(second, "rank", "player_id") == [
        (5, runners["e"].player_id),
        (6, runners["f"].player_id),
    ]
    assert first["next_cursor"] and second["next_cursor"] == ""
    assert first["total"] == second["total"] == 6


async def test_top_of_period_all_is_the_current_top(runners):
    named = await runners["a"].call("GET", "/v1/boards/best_run/top?period=all")
    current = await runners["a"].call("GET", "/v1/boards/best_run/top")

    assert named["entries"] == current["entries"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("rows=3", "cde"),
        ("rows=1", "d"),
        ("radius=1", "cde"),
        ("radius=0", "d"),
        ("", "abcdef"),
    ],
)
async def test_around_gives_a_radius_or_an_exact_number_of_rows(runners, query, names):
    player = runners["d"].player_id

    around = await runners["a"].call("GET", f"/v1/boards/best_run/around/{player}?{query}")

    assert _rows(around, "player_id", "rank") == [
        (runners[name].player_id, RANKS[name]) for name in names
    ]


@pytest.mark.parametrize(
    ("name", "rows", "names"), [("a", 3, "abc"), ("b", 3, "abc"), ("f", 4, "cdef")]
)
async def test_around_rows_near_either_end_stay_exact(runners, name, rows, names):
    player = runners[name].player_id

    around = await runners["a"].call("GET", f"/v1/boards/best_run/around/{player}?rows={rows}")

    assert _rows(around, "player_id", "rank") == [
        (runners[name].player_id, RANKS[name]) for name in names
    ]


async def test_one_players_standing_has_rank_score_subscore_and_metadata(runners):
    player = runners["e"].player_id

    reply = await runners["a"].call("GET", f"/v1/boards/best_run/players/{player}")

    assert reply["entry"] == {
        "rank": 5,
        "player_id": player,
        "username": runners["e"].username,
        "score": 300,
        "subscore": 0,
        "metadata": {"combo": 0, "tag": "e"},
    }
    assert (reply["board"], reply["period"]) == ("best_run", "all") and reply["seq"] > 0


async def test_friends_are_ranked_among_themselves_beside_their_board_ranks(runners):
    listed = ",".join(_ids(runners, "fdgb"))

    reply = await runners["a"].call("GET", f"/v1/boards/best_run/players?ids={listed}")

    assert _rows(reply, "player_id", "rank", "board_rank", "score") == [
        (runners["b"].player_id, 1, 1, 500),
        (runners["d"].player_id, 2, 4, 400),
        (runners["f"].player_id, 3, 6, 100),
    ]
    assert reply["entries"][0]["metadata"] == {"combo": 3}


async def test_friends_who_tie_share_a_place_by_the_boards_rule(runners):
    listed = ",".join(_ids(runners, "fba"))

    reply = await runners["a"].call("GET", f"/v1/boards/best_run/players?ids={listed}")

    top = await runners["a"].call("GET", "/v1/boards/best_run/top?limit=2")
    rows = _rows(reply, "player_id", "rank", "board_rank")
    tied = [entry["player_id"] for entry in top["entries"]]
    assert sorted(tied) == sorted(_ids(runners, "ab"))
    assert rows == [(tied[0], 1, 1), (tied[1], 1, 1), (runners["f"].player_id, 3, 6)]


async def test_friends_none_of_whom_has_played_are_an_empty_list(runners):
    listed = f"{runners['g'].player_id},{uuid.uuid4()}"

    reply = await runners["a"].call("GET", f"/v1/boards/best_run/players?ids={listed}")

    assert reply["entries"] == [] and reply["board"] == "best_run"


async def test_periods_of_a_daily_board_list_today_as_open(runners):
    today = time.strftime("%Y-%m-%d", time.gmtime())

    listed = await runners["a"].call("GET", "/v1/boards/daily/periods")
    one = await runners["a"].call("GET", "/v1/boards/daily/periods?limit=1")
    never = await runners["a"].call("GET", "/v1/boards/global/periods")

    current = listed["periods"][0]
    assert (current["period"], current["closed_at"]) == (today, None)
    assert 0 < current["opened_at"] <= time.time() * 1000
    assert one == {"board": "daily", "periods": [current]}
    assert never == {"board": "global", "periods": []}


async def test_thirty_players_paged_while_the_25th_jumps_to_first(players):
    """A pinned chain shows the board as it was at its first page, every player once; an
    unpinned chain opened at the same moment is told BOARD_MOVED instead of skipping or
    repeating anyone."""
    climbers = await asyncio.gather(*(players() for _ in range(30)))
    for index, player in enumerate(climbers):
        await _play(player, "score", {"points": 900 - 10 * index})
    reader = climbers[0]
    pinned = await reader.call("GET", "/v1/boards/global/top?limit=10&pin=1")
    unpinned = await reader.call("GET", "/v1/boards/global/top?limit=10")

    await _play(climbers[24], "score", {"points": 1000})
    pages = [pinned]
    while pages[-1]["next_cursor"]:
        cursor = quote(pages[-1]["next_cursor"])
        pages.append(await reader.call("GET", f"/v1/boards/global/top?limit=10&cursor={cursor}"))
    with pytest.raises(ProtocolError) as moved:
        cursor = quote(unpinned["next_cursor"])
        await reader.call("GET", f"/v1/boards/global/top?limit=10&cursor={cursor}")
    now = await reader.call("GET", "/v1/boards/global/top?limit=1")

    seen = [entry for page in pages for entry in page["entries"]]
    assert len(pages) == 3
    assert [entry["player_id"] for entry in seen] == [player.player_id for player in climbers]
    assert [(entry["rank"], entry["score"]) for entry in seen] == [
        (index + 1, 900 - 10 * index) for index in range(30)
    ]
    assert {page["seq"] for page in pages} == {pinned["seq"]}
    assert (moved.value.status, moved.value.code) == (409, "BOARD_MOVED")
    assert now["entries"][0]["player_id"] == climbers[24].player_id


async def test_a_pinned_chain_whose_copy_expired_is_told_so(runners, stack, redis_db):
    first = await runners["a"].call("GET", "/v1/boards/best_run/top?limit=2&pin=1")

    copies = stack.names.board_key("best_run", "all") + ":page:*"
    async for key in redis_db.scan_iter(match=copies):
        await redis_db.delete(key)
    with pytest.raises(ProtocolError) as expired:
        cursor = quote(first["next_cursor"])
        await runners["a"].call("GET", f"/v1/boards/best_run/top?limit=2&cursor={cursor}")

    assert (expired.value.status, expired.value.code) == (409, "CURSOR_EXPIRED")


async def test_a_cursor_is_good_only_for_the_board_and_period_that_gave_it(runners):
    page = await runners["a"].call("GET", "/v1/boards/best_run/top?limit=1")
    cursor = quote(page["next_cursor"])

    with pytest.raises(ProtocolError) as elsewhere:
        await runners["a"].call("GET", f"/v1/boards/global/top?limit=1&cursor={cursor}")

    assert (elsewhere.value.status, elsewhere.value.code) == (400, "INVALID_CURSOR")
