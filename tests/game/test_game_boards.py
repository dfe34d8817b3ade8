"""Board operators, ranges and periods as workers apply them: Postgres and Redis agree."""

import time
import uuid

import orjson
import pytest
from podium.game.v1 import game_pb2

from game.state import state_hash
from game.worker import running
from infra.boards import MAX_SCORE, boards
from tests.game.rulesets import SubmittingRuleset

APPLIED = game_pb2.ACTION_STATUS_APPLIED
REJECTED = game_pb2.ACTION_STATUS_REJECTED


async def _standing(shards, redis_client, names, player: str, board: str, period: str):
    """(score, subscore, metadata) in Postgres, checked equal to what Redis shows."""
    row = await shards.for_player(player).fetchrow(
        "SELECT score, subscore, metadata, reached_ms FROM board_scores"
        " WHERE player_id = $1 AND board = $2 AND period = $3",
        player,
        board,
        period,
    )
    key = names.board_key(board, period)
    entry = await redis_client.hget(f"{key}:idx", player)
    if row is None:
        assert entry is None
        return None
    _, zscore, member, metadata = entry.decode().split("|", 3)
    sign = -1 if boards()[board].order == "desc" else 1
    assert (sign * int(zscore), metadata or None) == (row["score"], row["metadata"])
    assert member.endswith(player)
    return row["score"], row["subscore"], row["metadata"] and orjson.loads(row["metadata"])


async def test_a_best_board_keeps_the_better_run_whole(client, shards, redis_client, game_names):
    """Runs (100, 5, A), (90, 10, B), (100, 4, C): (100, 5) stays, with A's metadata, since
    score comes first and equal scores compare the combo; never a mix of two runs."""
    player = str(uuid.uuid4())
    hash_ = state_hash({"total": 0, "plays": 0})
    results = []
    for score, combo, tag in [(100, 5, "A"), (90, 10, "B"), (100, 4, "C")]:
        params = {"score": score, "combo": combo, "tag": tag}
        result = await client.play(client.action(player, hash_, name="run", params=params))
        results.append(result)
        hash_ = result.state_hash

    assert [r.status for r in results] == [APPLIED] * 3
    standing = await _standing(shards, redis_client, game_names, player, "best_run", "all")
    assert standing == (100, 5, {"combo": 5, "tag": "A"})
    events = await shards.for_player(player).fetch(
        "SELECT delta, score, subscore FROM score_events WHERE player_id = $1", player
    )
    assert [tuple(e) for e in events] == [(100, 100, 5)]


async def test_the_largest_exact_score_is_kept_and_one_more_is_refused(
    client, shards, redis_client, game_names
):
    player = str(uuid.uuid4())
    hash_ = state_hash({"total": 0, "plays": 0})

    biggest = await client.play(
        client.action(player, hash_, name="run", params={"score": MAX_SCORE, "combo": 0})
    )
    beyond = await client.play(
        client.action(player, biggest.state_hash, name="run", params={"score": 2**53, "combo": 9})
    )

    assert biggest.status == APPLIED
    assert (beyond.status, beyond.error_code) == (REJECTED, "SCORE_OUT_OF_RANGE")
    standing = await _standing(shards, redis_client, game_names, player, "best_run", "all")
    assert standing == (MAX_SCORE, 0, {"combo": 0})


class _Submitter:
    """One player sending SubmittingRuleset actions, each quoting the hash the last one left."""

    def __init__(self, client) -> None:
        self.client = client
        self.player = str(uuid.uuid4())
        self._hash = state_hash({"submitted": 0})

    async def __call__(self, board: str, score: int, **more) -> game_pb2.ActionResult:
        params = {"board": board, "score": score, **more}
        result = await self.client.play(self.client.action(self.player, self._hash, params=params))
        self._hash = result.state_hash
        return result


@pytest.fixture
async def submit(spare_names, worker_settings, make_client):
    """A submitter on a worker of the test's own that runs SubmittingRuleset."""
    async with running(worker_settings(namespace=spare_names.namespace), SubmittingRuleset()):
        yield _Submitter(await make_client(spare_names))


async def test_a_lower_first_best_board_keeps_the_lowest_time(
    submit, shards, redis_client, spare_names
):
    """fastest: lower scores win, then lower subscores."""
    for score, subscore in [(50, 3), (40, 9), (45, 0), (40, 8), (40, 8)]:
        assert (await submit("fastest", score, subscore=subscore)).status == APPLIED

    standing = await _standing(shards, redis_client, spare_names, submit.player, "fastest", "all")
    assert standing == (40, 8, None)


async def test_a_set_board_takes_each_score_as_it_comes_negative_too(
    submit, shards, redis_client, spare_names
):
    first = await submit("hourly_set", 10, metadata={"try": 1})
    second = await submit("hourly_set", -5, metadata={"try": 2})
    beyond = await submit("hourly_set", -1_000_001)

    assert (first.status, second.status) == (APPLIED, APPLIED)
    assert (beyond.status, beyond.error_code) == (REJECTED, "SCORE_OUT_OF_RANGE")
    period = boards()["hourly_set"].period_at(_now_ms())
    standing = await _standing(
        shards, redis_client, spare_names, submit.player, "hourly_set", period
    )
    assert standing == (-5, 0, {"try": 2})


async def test_a_decr_board_takes_each_score_away(submit, shards, redis_client, spare_names):
    await submit("penalties", 3)
    await submit("penalties", 2)

    period = boards()["penalties"].period_at(_now_ms())
    standing = await _standing(
        shards, redis_client, spare_names, submit.player, "penalties", period
    )
    assert standing == (-5, 0, None)


async def test_metadata_larger_than_a_kibibyte_is_refused(submit, shards, spare_names):
    result = await submit("best_run", 1, metadata={"note": "x" * 1100})

    assert (result.status, result.error_code) == (REJECTED, "METADATA_TOO_LARGE")
    assert (
        await shards.for_player(submit.player).fetchval(
            "SELECT count(*) FROM board_scores WHERE player_id = $1", submit.player
        )
        == 0
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
