"""Actions through the running worker: Postgres rows, Redis boards, results and board changes."""

import asyncio
import uuid
from datetime import UTC, datetime

import nats.js.errors
import orjson
import pytest
from podium.game.v1 import game_pb2

from game.dead_letters import REASON_HEADER, SUBJECT_HEADER
from game.state import state_hash
from game.worker import running
from infra.shards import partition_of_player

APPLIED = game_pb2.ACTION_STATUS_APPLIED
MISMATCH = game_pb2.ACTION_STATUS_MISMATCH
REJECTED = game_pb2.ACTION_STATUS_REJECTED
INITIAL_HASH = state_hash({"total": 0, "plays": 0})
TOTALS = ("global", "daily", "weekly")


def _player() -> str:
    return str(uuid.uuid4())


def _json(state: dict) -> str:
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS).decode()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _seq(redis_client, names, board: str) -> int:
    return int(await redis_client.get(names.board_seq_key(board)) or 0)


async def _rows(shards, player: str) -> dict:
    """Everything Postgres holds about a player, for before/after comparisons."""
    pg = shards.for_player(player)
    state = await pg.fetchrow(
        "SELECT state::text, state_hash, version FROM player_state WHERE player_id = $1", player
    )
    boards = await pg.fetch(
        "SELECT board, period, score, reached_ms FROM board_scores WHERE player_id = $1"
        " ORDER BY board, period",
        player,
    )
    events = await pg.fetch(
        "SELECT board, period, delta, score, action_id::text FROM score_events"
        " WHERE player_id = $1 ORDER BY at, board",
        player,
    )
    decisions = await pg.fetch(
        "SELECT action_id::text, status FROM applied_actions WHERE player_id = $1", player
    )
    return {
        "state": dict(state) if state else None,
        "boards": [dict(r) for r in boards],
        "events": [dict(r) for r in events],
        "decisions": [dict(r) for r in decisions],
    }


async def test_score_action_is_applied_to_state_boards_and_redis(
    client, board_changes, shards, redis_client, redis_score, game_names
):
    player = _player()
    moment = datetime.now(UTC)
    day = moment.date().isoformat()
    year, week, _ = moment.isocalendar()
    week = f"{year}-W{week:02d}"
    totals = ("global", "daily", "weekly")
    seq_before = {b: await _seq(redis_client, game_names, b) for b in totals}
    action = client.action(player, INITIAL_HASH, params={"points": 7}, received_ts_ms=_ms(moment))

    result = await client.play(action)

    expected_state = {"total": 7, "plays": 1}
    assert result.action_id == action.action_id
    assert result.status == APPLIED
    assert result.state_json == _json(expected_state)
    assert result.state_hash == state_hash(expected_state)
    assert result.score == 7
    assert (result.error_code, result.error_message) == ("", "")

    rows = await _rows(shards, player)
    assert rows["state"]["version"] == 1
    assert rows["state"]["state_hash"] == result.state_hash
    assert orjson.loads(rows["state"]["state"]) == expected_state
    periods = {"global": "all", "daily": day, "weekly": week}
    stored = [(b["board"], b["period"], b["score"], b["reached_ms"]) for b in rows["boards"]]
    assert stored == [(b, periods[b], 7, _ms(moment)) for b in sorted(periods)]
    assert sorted((e["board"], e["period"], e["delta"], e["score"]) for e in rows["events"]) == [
        (b, periods[b], 7, 7) for b in sorted(periods)
    ]
    assert {e["action_id"] for e in rows["events"]} == {action.action_id}
    assert rows["decisions"] == [{"action_id": action.action_id, "status": "applied"}]

    for board, period in periods.items():
        assert await redis_score(game_names, board, period, player) == 7
    seq_after = {b: await _seq(redis_client, game_names, b) for b in totals}
    assert all(seq_after[b] > seq_before[b] for b in totals)

    seen = set()
    while len(seen) < 3:
        change = await board_changes.next()
        seen.add((change.board, change.period, change.seq))
    assert seen == {(b, periods[b], seq_after[b]) for b in totals}


async def test_next_action_adds_to_the_totals(client, shards, redis_score, game_names):
    player = _player()
    first = await client.play(client.action(player, INITIAL_HASH, params={"points": 5}))

    second = await client.play(client.action(player, first.state_hash, params={"points": 8}))

    assert second.status == APPLIED
    assert second.score == 13
    assert orjson.loads(second.state_json) == {"total": 13, "plays": 2}
    rows = await _rows(shards, player)
    assert rows["state"]["version"] == 2
    assert {b["board"]: b["score"] for b in rows["boards"]} == dict.fromkeys(TOTALS, 13)
    assert sorted(e["score"] for e in rows["events"] if e["board"] == "global") == [5, 13]
    assert await redis_score(game_names, "global", "all", player) == 13


async def test_a_late_action_counts_in_its_own_day_until_the_day_closes(
    spare_names, worker_settings, make_client, shards, redis_score
):
    """Played at 23:59:59.9 and reaching the worker after midnight: it counts in the day it was
    played while the daily board's grace (300 s) lasts, and is refused PERIOD_CLOSED after;
    one played at 00:00:00.1 counts in the new day. Nothing lands in the wrong day."""
    midnight = datetime(2301, 3, 4, tzinfo=UTC)
    clock = _Clock(_ms(midnight) + 60_000)
    late, on_time, too_late = _player(), _player(), _player()

    async with running(worker_settings(namespace=spare_names.namespace), clock=clock):
        client = await make_client(spare_names)
        before = _ms(midnight) - 100
        counted = await client.play(client.action(late, INITIAL_HASH, received_ts_ms=before))
        after = _ms(midnight) + 100
        new_day = await client.play(client.action(on_time, INITIAL_HASH, received_ts_ms=after))
        clock.ms = _ms(midnight) + 301_000
        refused = await client.play(client.action(too_late, INITIAL_HASH, received_ts_ms=before))

    assert (counted.status, new_day.status) == (APPLIED, APPLIED)
    assert (refused.status, refused.error_code) == (REJECTED, "PERIOD_CLOSED")
    days = {}
    for player in (late, on_time, too_late):
        rows = await _rows(shards, player)
        days[player] = [b["period"] for b in rows["boards"] if b["board"] == "daily"]
    assert days == {late: ["2301-03-03"], on_time: ["2301-03-04"], too_late: []}
    assert await redis_score(spare_names, "daily", "2301-03-03", late) == 5
    assert await redis_score(spare_names, "daily", "2301-03-04", late) is None


class _Clock:
    """Unix milliseconds that a test sets."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


async def test_stale_hash_is_a_mismatch_that_changes_nothing(
    client, shards, redis_client, redis_score, game_names
):
    player = _player()
    applied = await client.play(client.action(player, INITIAL_HASH, params={"points": 4}))
    before = await _rows(shards, player)
    seq_before = await _seq(redis_client, game_names, "global")

    stale = client.action(player, INITIAL_HASH, params={"points": 9})
    result = await client.play(stale)

    assert result.status == MISMATCH
    assert result.action_id == stale.action_id
    assert result.state_json == applied.state_json
    assert result.state_hash == applied.state_hash
    assert result.score == 4
    assert result.error_code == ""
    after = await _rows(shards, player)
    assert after["decisions"] == [
        *before["decisions"],
        {"action_id": stale.action_id, "status": "mismatch"},
    ]
    assert {k: after[k] for k in ("state", "boards", "events")} == {
        k: before[k] for k in ("state", "boards", "events")
    }
    assert await redis_score(game_names, "global", "all", player) == 4
    assert await _seq(redis_client, game_names, "global") == seq_before


async def test_repeated_action_id_gets_the_first_result_and_applies_once(
    client, make_client, shards, redis_score, game_names
):
    player = _player()
    action = client.action(player, INITIAL_HASH, params={"points": 6})
    first = await client.play(action)
    other_session = await make_client(game_names)
    repeat = game_pb2.Action()
    repeat.CopyFrom(action)
    repeat.session_key = other_session.session_key

    ack = await other_session.send(repeat, msg_id=f"retry-{uuid.uuid4()}")
    second = await other_session.result()

    assert not ack.duplicate
    assert first.status == APPLIED
    assert second.SerializeToString() == first.SerializeToString()
    rows = await _rows(shards, player)
    assert rows["state"]["version"] == 1
    assert {b["board"]: b["score"] for b in rows["boards"]} == dict.fromkeys(TOTALS, 6)
    assert len(rows["events"]) == 3
    assert len(rows["decisions"]) == 1
    assert await redis_score(game_names, "global", "all", player) == 6


async def test_twenty_concurrent_actions_on_one_hash_apply_exactly_once(
    client, shards, worker_settings, game_names
):
    """A second worker shares the partitions, so the twenty may reach either of them."""
    player = _player()
    actions = [client.action(player, INITIAL_HASH, params={"points": p}) for p in range(1, 21)]

    async with running(worker_settings(namespace=game_names.namespace)):
        await asyncio.gather(*(client.send(a) for a in actions))
        results = [await client.result() for _ in actions]

    statuses = sorted(r.status for r in results)
    assert statuses == [APPLIED] + [MISMATCH] * 19
    [winner] = [r for r in results if r.status == APPLIED]
    assert all(r.state_hash == winner.state_hash for r in results)
    assert {r.action_id for r in results} == {a.action_id for a in actions}
    rows = await _rows(shards, player)
    assert rows["state"]["version"] == 1
    assert {b["board"]: b["score"] for b in rows["boards"]} == dict.fromkeys(TOTALS, winner.score)
    assert sorted(d["status"] for d in rows["decisions"]) == ["applied"] + ["mismatch"] * 19


async def test_refused_action_is_recorded_once_and_answered_the_same_twice(client, shards):
    player = _player()
    action = client.action(player, INITIAL_HASH, name="jump", params={})

    first = await client.play(action)
    await client.send(action, msg_id=f"retry-{uuid.uuid4()}")
    second = await client.result()

    assert first.status == REJECTED
    assert first.error_code == "UNKNOWN_ACTION"
    assert first.error_message
    assert first.state_hash == INITIAL_HASH
    assert first.state_json == _json({"total": 0, "plays": 0})
    assert second.SerializeToString() == first.SerializeToString()
    rows = await _rows(shards, player)
    assert rows["decisions"] == [{"action_id": action.action_id, "status": "rejected"}]
    assert rows["state"]["version"] == 0
    assert rows["boards"] == []
    assert rows["events"] == []


@pytest.mark.parametrize(
    "params_json",
    ["not json", "", "[1, 2]", '"points"', "5", "null", '{"points": 0}', '{"points": true}'],
)
async def test_bad_params_are_rejected_as_invalid_params(client, shards, params_json):
    player = _player()

    result = await client.play(client.action(player, INITIAL_HASH, params_json=params_json))

    assert result.status == REJECTED
    assert result.error_code == "INVALID_PARAMS"
    assert result.state_hash == INITIAL_HASH
    rows = await _rows(shards, player)
    assert rows["state"]["version"] == 0
    assert rows["decisions"][0]["status"] == "rejected"


async def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(
    client, shards, dead_letters, game_names
):
    player = _player()
    elsewhere = _player_in_another_partition(player)
    bad_action_id = client.action(player, INITIAL_HASH, action_id="not-a-uuid")
    bad_player_id = client.action("player-one", INITIAL_HASH)
    misrouted = client.action(elsewhere, INITIAL_HASH)
    good = client.action(player, INITIAL_HASH, params={"points": 2})
    junk = {"garbage": b"\xff\xfe garbage", "empty": b""}

    for name, data in junk.items():
        await client.send_bytes(player, data, msg_id=f"{name}-{uuid.uuid4()}")
    await client.send(bad_action_id)
    await client.send_bytes(player, bad_player_id.SerializeToString(), msg_id=str(uuid.uuid4()))
    await client.send_bytes(player, misrouted.SerializeToString(), msg_id=str(uuid.uuid4()))
    await client.send(good)
    result = await client.result()

    assert result.action_id == good.action_id
    assert result.status == APPLIED
    rows = await _rows(shards, player)
    assert rows["decisions"] == [{"action_id": good.action_id, "status": "applied"}]
    assert (await _rows(shards, elsewhere))["decisions"] == []
    letters = await dead_letters(game_names)
    subject = game_names.action_subject(player)
    reasons = [m.headers[REASON_HEADER] for m in letters if m.headers[SUBJECT_HEADER] == subject]
    assert reasons == [
        "malformed: not a podium.game.v1.Action",
        # An empty message decodes as an Action whose fields are all empty.
        "malformed: player_id or action_id is not a UUID",
        "malformed: player_id or action_id is not a UUID",
        "malformed: player_id or action_id is not a UUID",
        "malformed: the subject is not the player's partition",
    ]


def _player_in_another_partition(player: str) -> str:
    while True:
        other = _player()
        if partition_of_player(other) != partition_of_player(player):
            return other


@pytest.mark.parametrize(
    "subject_of",
    [
        lambda ns, player: f"{ns}.actions.16.{player}",
        lambda ns, player: f"{ns}.actions.xx.{player}",
        lambda ns, player: f"{ns}.actions.{player}",
        lambda ns, player: f"{ns}.actions.00.{player}.extra",
    ],
    ids=["partition_16", "partition_xx", "no_partition", "extra_token"],
)
async def test_the_stream_refuses_a_subject_no_partition_covers(
    client, nats_client, game_names, subject_of
):
    """Stored there, it would wait for ever: no worker pulls it, nobody answers it."""
    player = _player()
    data = client.action(player, INITIAL_HASH).SerializeToString()

    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await nats_client.jetstream().publish(subject_of(game_names.namespace, player), data)
