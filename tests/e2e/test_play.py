"""Players play through the whole path: WebSocket, JetStream, worker, Postgres, Redis, ranking."""

import asyncio
import sys
import uuid


async def _play(player, points: int) -> dict:
    action_id = await player.act("score", {"points": points})
    return await player.result(action_id)


async def _board_until(player, predicate, timeout: float = 10.0) -> dict:
    while True:
        frame = await player.receive("board", timeout)
        if predicate(frame):
            return frame


def _ranks(frame: dict) -> dict[str, tuple[int, int]]:
    return {e["player_id"]: (e["rank"], e["score"]) for e in frame["entries"]}


async def test_two_players_get_their_results_and_the_same_ranked_board(players):
    alice, bob = await players(), await players()
    await alice.send({"type": "subscribe", "board": "global", "view": "top", "limit": 10, "id": 1})
    await bob.send({"type": "subscribe", "board": "global", "limit": 10, "id": "b"})
    first_alice = await alice.receive("board", id=1)
    first_bob = await bob.receive("board", id="b")

    alice_results = [await _play(alice, 1000) for _ in range(3)]
    bob_results = [await _play(bob, 1000) for _ in range(2)]

    def settled(frame):
        ranks = _ranks(frame)
        return ranks.get(alice.player_id) == (1, 3000) and ranks.get(bob.player_id) == (2, 2000)

    seen_by_alice = await _board_until(alice, settled)
    seen_by_bob = await _board_until(bob, settled)
    assert first_alice["snapshot"] is True and first_bob["snapshot"] is True
    assert [r["status"] for r in alice_results] == ["applied"] * 3
    assert [r["score"] for r in alice_results] == [1000, 2000, 3000]
    assert [r["score"] for r in bob_results] == [1000, 2000]
    assert seen_by_alice["snapshot"] is False and seen_by_alice["period"] == "all"
    assert seen_by_bob["entries"][:2] == seen_by_alice["entries"][:2]
    assert seen_by_alice["entries"][0]["username"] == alice.username


async def test_an_action_id_in_upper_case_is_echoed_as_sent_and_counts_once(players):
    player = await players()
    action_id = str(uuid.uuid4()).upper()

    await player.act("score", {"points": 7}, action_id=action_id)
    first = await player.result(action_id)
    await player.act("score", {"points": 7}, action_id=action_id.lower())
    again = await player.result(action_id.lower())

    assert first["status"] == "applied" and first["score"] == 7
    assert again["score"] == 7 and again["state_hash"] == first["state_hash"]


async def test_rest_reads_agree_with_the_pushed_ranks(players):
    leader, runner_up = await players(), await players()
    await _play(leader, 900)
    await _play(runner_up, 899)

    top = await leader.call("GET", "/v1/boards/global/top?limit=100")
    around = await leader.call("GET", f"/v1/boards/global/around/{runner_up.player_id}?radius=1")

    ranks = _ranks(top)
    assert ranks[leader.player_id][1] == 900 and ranks[runner_up.player_id][1] == 899
    assert ranks[runner_up.player_id][0] == ranks[leader.player_id][0] + 1
    assert runner_up.player_id in _ranks(around)
    for player_id, rank_and_score in _ranks(around).items():
        assert ranks[player_id] == rank_and_score
    assert top["board"] == "global" and top["period"] == "all"


async def test_a_top_page_read_again_after_a_result_shows_that_result(players):
    """The gateway keeps first top pages until the board changes; a player who got a result
    and reads the top at once sees it, and so does a player reading over REST only."""
    player = await players()
    before = await player.call("GET", "/v1/boards/global/top?limit=100")
    again = await player.call("GET", "/v1/boards/global/top?limit=100")
    assert again == before

    for points in (7, 5):
        result = await player.play("score", {"points": points})
        top = await player.call("GET", "/v1/boards/global/top?limit=100")
        assert _ranks(top)[player.player_id][1] == result["score"]
        assert top["seq"] > before["seq"]
        before = top


async def test_daily_board_counts_the_day_of_play(players):
    player = await players()

    await _play(player, 5)
    daily = await player.call("GET", "/v1/boards/daily/top?limit=100")

    assert len(daily["period"]) == 10
    assert _ranks(daily)[player.player_id][1] == 5


async def test_stale_state_hash_is_a_mismatch_that_changes_nothing(
    players, databases, redis_score, stack
):
    player = await players()
    initial_hash = player.state_hash
    applied = await _play(player, 5)

    action_id = await player.act("score", {"points": 7}, state_hash=initial_hash)
    mismatch = await player.result(action_id)

    db = databases.for_player(player.player_id)
    row = await db.fetchrow(
        "SELECT version, state_hash FROM player_state WHERE player_id = $1",
        uuid.UUID(player.player_id),
    )
    board_score = await db.fetchval(
        "SELECT score FROM board_scores WHERE player_id = $1 AND board = 'global'",
        uuid.UUID(player.player_id),
    )
    shown = await redis_score(stack.names, "global", "all", player.player_id)
    assert mismatch["status"] == "mismatch"
    assert mismatch["state_hash"] == applied["state_hash"] == row["state_hash"]
    assert mismatch["state"] == applied["state"] and mismatch["score"] == 5
    assert (row["version"], board_score, shown) == (1, 5, 5)


async def test_the_same_action_id_twice_is_applied_once_with_the_same_answer(players, databases):
    player = await players()
    frame = {
        "type": "action",
        "action_id": str(uuid.uuid4()),
        "action": "score",
        "params": {"points": 7},
        "state_hash": player.state_hash,
        "ts": 1,
    }

    await player.send({**frame, "id": "first"})
    first = await player.receive("result", id="first")
    await player.send({**frame, "id": "second"})
    second = await player.receive("result", id="second")

    db = databases.for_player(player.player_id)
    version = await db.fetchval(
        "SELECT version FROM player_state WHERE player_id = $1", uuid.UUID(player.player_id)
    )
    events = await db.fetchval(
        "SELECT count(*) FROM score_events WHERE action_id = $1", uuid.UUID(frame["action_id"])
    )
    assert first["status"] == "applied" and first["score"] == 7
    assert {**first, "id": None} == {**second, "id": None}
    assert version == 1
    assert events == 3  # one event per board: global, daily and weekly


async def test_refused_actions_are_rejected_with_a_code_and_apply_nothing(players, databases):
    player = await players()

    low = await player.result(await player.act("score", {"points": 0}))
    unknown = await player.result(await player.act("teleport", {}))
    extra = await player.result(await player.act("score", {"points": 3, "bonus": 1}))

    version = await databases.for_player(player.player_id).fetchval(
        "SELECT coalesce(max(version), 0) FROM player_state WHERE player_id = $1",
        uuid.UUID(player.player_id),
    )
    assert [low["status"], unknown["status"], extra["status"]] == ["rejected"] * 3
    assert low["error"]["code"] == "INVALID_PARAMS"
    assert unknown["error"]["code"] == "UNKNOWN_ACTION"
    assert extra["error"]["code"] == "INVALID_PARAMS"
    assert version == 0


async def test_the_bot_plays_and_accounts_for_every_action(stack):
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack.bot",
        "--url",
        stack.url,
        "--players",
        "4",
        "--actions",
        "5",
        "--pause",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )

    output = (await asyncio.wait_for(bot.communicate(), 60))[0].decode()

    assert bot.returncode == 0, output
    assert "[top 10 seq" in output
    assert "sent 20, applied 20, mismatched 0, rejected 0, missing 0," in output
