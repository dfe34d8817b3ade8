"""Client frames are parsed into typed requests or refused with the protocol's codes."""

import uuid

import orjson
import pytest

from gateway.frames import (
    ActionFrame,
    FrameError,
    PingFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    parse_frame,
)

PLAYERS = [str(uuid.uuid4()) for _ in range(3)]


def _subscribe(**fields) -> str:
    return orjson.dumps({"type": "subscribe", "board": "global", **fields}).decode()


def _action(**fields) -> str:
    frame = {
        "type": "action",
        "action_id": str(uuid.uuid4()),
        "action": "score",
        "params": {"points": 5},
        "state_hash": "abc",
        "ts": 1,
        **fields,
    }
    return orjson.dumps({k: v for k, v in frame.items() if v is not None}).decode()


def test_action_frame_keeps_the_action_id_as_the_client_spelled_it():
    action_id = str(uuid.uuid4()).upper()

    frame = parse_frame(_action(action_id=action_id, id="a1"))

    assert frame == ActionFrame("a1", action_id, "score", {"points": 5}, "abc", 1)


def test_action_params_and_ts_are_optional():
    frame = parse_frame(_action(params=None, ts=None))

    assert (frame.params, frame.ts) == ({}, 0)


def test_subscribe_defaults_to_the_top_ten():
    frame = parse_frame('{"type": "subscribe", "board": "daily"}')

    assert frame == SubscribeFrame(None, "daily", "top", 10)


def test_subscribe_to_around_defaults_to_a_radius_of_five():
    frame = parse_frame(_subscribe(view="around", id="a"))

    assert frame == SubscribeFrame("a", "global", "around", radius=5, rows=0)


def test_subscribe_to_around_takes_a_radius_or_a_number_of_rows():
    by_radius = parse_frame(_subscribe(view="around", radius=0))
    by_rows = parse_frame(_subscribe(view="around", rows=101))

    assert (by_radius.radius, by_radius.rows) == (0, 0)
    assert by_rows.rows == 101


def test_subscribe_to_players_keeps_their_ids_in_canonical_form():
    listed = [PLAYERS[0].upper(), PLAYERS[1], PLAYERS[2]]

    frame = parse_frame(_subscribe(view="players", players=listed))

    assert frame.view == "players"
    assert frame.players == tuple(PLAYERS)


def test_subscribe_to_players_takes_a_hundred_players():
    listed = [str(uuid.uuid4()) for _ in range(100)]

    frame = parse_frame(_subscribe(view="players", players=listed))

    assert len(frame.players) == 100


def test_subscribe_carries_the_seq_and_period_a_client_saw_last():
    frame = parse_frame(_subscribe(view="top", seq=41, period="all"))

    assert (frame.seq, frame.period) == (41, "all")
    assert parse_frame(_subscribe(seq=0)).seq == 0
    assert parse_frame(_subscribe()).seq is None


def test_fields_of_another_view_are_ignored():
    frame = parse_frame(_subscribe(view="players", players=PLAYERS[:1], limit=500, radius=99))

    assert (frame.limit, frame.radius, frame.rows) == (10, 5, 0)


def test_unsubscribe_and_ping_are_parsed():
    assert parse_frame('{"type": "unsubscribe", "board": "global", "id": 3}') == UnsubscribeFrame(
        3, "global"
    )
    assert parse_frame('{"type": "ping"}') == PingFrame(None)


def test_unsubscribe_may_name_one_view():
    frame = parse_frame('{"type": "unsubscribe", "board": "global", "view": "around"}')

    assert frame == UnsubscribeFrame(None, "global", "around")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "INVALID_JSON"),
        ("{", "INVALID_JSON"),
        ('"action"', "INVALID_JSON"),
        ("null", "INVALID_JSON"),
        ('{"type": 5}', "INVALID_FIELD"),
        ('{"type": "fly"}', "UNKNOWN_TYPE"),
        ('{"type": "ping", "id": 1.5}', "INVALID_FIELD"),
        ('{"type": "ping", "id": true}', "INVALID_FIELD"),
        ('{"type": "ping", "id": "%s"}' % ("x" * 65), "INVALID_FIELD"),
        (_action(action_id=None), "MISSING_FIELD"),
        (_action(action=None), "MISSING_FIELD"),
        (_action(state_hash=None), "MISSING_FIELD"),
        (_action(action_id=7), "INVALID_FIELD"),
        (_action(action_id="not-a-uuid"), "INVALID_FIELD"),
        (_action(action_id=f"{{{uuid.uuid4()}}}"), "INVALID_FIELD"),
        (_action(action_id=uuid.uuid4().hex), "INVALID_FIELD"),
        (_action(action_id=f"urn:uuid:{uuid.uuid4()}"), "INVALID_FIELD"),
        (_action(action=""), "INVALID_FIELD"),
        (_action(action="a" * 65), "INVALID_FIELD"),
        (_action(params=[1]), "INVALID_FIELD"),
        (_action(state_hash=1), "INVALID_FIELD"),
        (_action(state_hash="h" * 129), "INVALID_FIELD"),
        (_action(ts="now"), "INVALID_FIELD"),
        (_action(ts=-1), "INVALID_FIELD"),
        (_action(ts=True), "INVALID_FIELD"),
        ('{"type": "subscribe"}', "MISSING_FIELD"),
        ('{"type": "subscribe", "board": "monthly"}', "UNKNOWN_BOARD"),
        ('{"type": "subscribe", "board": "global", "limit": 101}', "INVALID_FIELD"),
        ('{"type": "subscribe", "board": "global", "limit": 2.0}', "INVALID_FIELD"),
        ('{"type": "subscribe", "board": "global", "view": "bottom"}', "UNSUPPORTED_VIEW"),
        ('{"type": "subscribe", "board": "global", "view": ""}', "UNSUPPORTED_VIEW"),
        ('{"type": "subscribe", "board": "global", "view": "Around"}', "UNSUPPORTED_VIEW"),
        ('{"type": "subscribe", "board": "global", "view": ["top"]}', "INVALID_FIELD"),
        (_subscribe(view="around", radius=51), "INVALID_FIELD"),
        (_subscribe(view="around", radius=-1), "INVALID_FIELD"),
        (_subscribe(view="around", radius="5"), "INVALID_FIELD"),
        (_subscribe(view="around", radius=True), "INVALID_FIELD"),
        (_subscribe(view="around", rows=0), "INVALID_FIELD"),
        (_subscribe(view="around", rows=102), "INVALID_FIELD"),
        (_subscribe(view="around", rows=3.0), "INVALID_FIELD"),
        (_subscribe(view="around", radius=2, rows=5), "INVALID_FIELD"),
        (_subscribe(view="players"), "MISSING_FIELD"),
        (_subscribe(view="players", players=[]), "INVALID_FIELD"),
        (_subscribe(view="players", players=PLAYERS[0]), "INVALID_FIELD"),
        (_subscribe(view="players", players={"id": PLAYERS[0]}), "INVALID_FIELD"),
        (_subscribe(view="players", players=[PLAYERS[0], 7]), "INVALID_FIELD"),
        (_subscribe(view="players", players=[PLAYERS[0], None]), "INVALID_FIELD"),
        (_subscribe(view="players", players=[PLAYERS[0], "not-a-uuid"]), "INVALID_FIELD"),
        (_subscribe(view="players", players=[f"{{{PLAYERS[0]}}}"]), "INVALID_FIELD"),
        (_subscribe(view="players", players=[PLAYERS[0], PLAYERS[0]]), "INVALID_FIELD"),
        (_subscribe(view="players", players=[PLAYERS[0], PLAYERS[0].upper()]), "INVALID_FIELD"),
        (
            _subscribe(view="players", players=[str(uuid.uuid4()) for _ in range(101)]),
            "INVALID_FIELD",
        ),
        (_subscribe(seq=-1), "INVALID_FIELD"),
        (_subscribe(seq=2**63), "INVALID_FIELD"),
        (_subscribe(seq="41"), "INVALID_FIELD"),
        (_subscribe(seq=4.0), "INVALID_FIELD"),
        (_subscribe(seq=False), "INVALID_FIELD"),
        (_subscribe(period="all"), "INVALID_FIELD"),
        (_subscribe(seq=1, period=5), "INVALID_FIELD"),
        (_subscribe(seq=1, period="p" * 33), "INVALID_FIELD"),
        ('{"type": "unsubscribe"}', "MISSING_FIELD"),
        ('{"type": "unsubscribe", "board": "global", "view": "friends"}', "UNSUPPORTED_VIEW"),
        ('{"type": "unsubscribe", "board": "global", "view": 1}', "INVALID_FIELD"),
        ('{"type": "unsubscribe", "board": "moon", "view": "top"}', "UNKNOWN_BOARD"),
    ],
)
def test_bad_frames_are_refused_with_a_stable_code(text, code):
    with pytest.raises(FrameError) as caught:
        parse_frame(text)

    assert caught.value.code == code
    assert caught.value.message


def test_an_error_keeps_the_id_of_the_frame_it_answers():
    with pytest.raises(FrameError) as caught:
        parse_frame('{"type": "subscribe", "board": "moon", "id": "s1"}')

    assert caught.value.frame_id == "s1"
