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


def test_unsubscribe_and_ping_are_parsed():
    assert parse_frame('{"type": "unsubscribe", "board": "global", "id": 3}') == UnsubscribeFrame(
        3, "global"
    )
    assert parse_frame('{"type": "ping"}') == PingFrame(None)


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
        ('{"type": "subscribe", "board": "global", "view": "around"}', "UNSUPPORTED_VIEW"),
        ('{"type": "subscribe", "board": "global", "view": ""}', "UNSUPPORTED_VIEW"),
        ('{"type": "unsubscribe"}', "MISSING_FIELD"),
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
