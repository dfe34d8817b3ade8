"""Binary frames carry exactly what JSON frames carry, and bad ones get the same stable codes."""

import random
import uuid

import orjson
import pytest
from podium.game.v1 import game_pb2
from podium.ranking.v1 import ranking_pb2
from podium.realtime.v1 import realtime_pb2 as pb

from gateway.codec import decode, decode_server, encode
from gateway.frames import FrameError, parse_fields, parse_frame
from gateway.results import error_frame, result_frame, welcome_frame
from gateway.views import board_frame
from gateway.wire import Frame

MAX_EXACT = 2**53 - 1
ADA, BOB, CY = (str(uuid.uuid4()) for _ in range(3))
ACTION_ID = str(uuid.uuid4())


def _entry(rank: int, player_id: str, score: int, **fields) -> ranking_pb2.Entry:
    return ranking_pb2.Entry(
        rank=rank, player_id=player_id, username=f"p{rank}", score=score, **fields
    )


def _result(status: int, **fields) -> game_pb2.ActionResult:
    return game_pb2.ActionResult(
        action_id=ACTION_ID,
        status=status,
        state_json='{"total": -250, "plays": 3, "tags": ["a", "é"]}',
        state_hash="a41f9e0c2d7b6a5e3c1f0e9d8c7b6a50",
        **fields,
    )


# Every server frame as the gateway's own builders make it (its JSON text is read back).
SERVER_FRAMES = {
    "welcome": welcome_frame(ADA, '{"total": 0, "plays": 0}', "6c3f0d3a"),
    "welcome_without_state": welcome_frame(ADA, "", "h"),
    "applied": result_frame(_result(game_pb2.ACTION_STATUS_APPLIED, score=MAX_EXACT), 17),
    "mismatch": result_frame(_result(game_pb2.ACTION_STATUS_MISMATCH, score=-MAX_EXACT), "r"),
    "rejected": result_frame(
        _result(
            game_pb2.ACTION_STATUS_REJECTED,
            score=-5,
            error_code="INVALID_PARAMS",
            error_message='params must be exactly {"points": <integer 1..1000>}',
        )
    ),
    "top": Frame(
        board_frame(
            "global",
            "top",
            "all",
            42,
            True,
            [
                _entry(1, ADA, MAX_EXACT, metadata_json='{"combo": 12, "tag": "no-hit"}'),
                _entry(2, BOB, 0, subscore=-7),
                _entry(3, CY, -MAX_EXACT, subscore=MAX_EXACT),
            ],
            "top",
        )
    ),
    "around_update": Frame(
        board_frame(
            "best_run",
            "around",
            "2026-12-04",
            2**62,
            False,
            [_entry(4, ADA, 4200, subscore=12, metadata_json='{"nested": {"x": [1, null]}}')],
        )
    ),
    "empty_view": Frame(board_frame("daily", "around", "2026-12-04", 0, True, [], 3)),
    "players": Frame(
        board_frame(
            "global",
            "players",
            "all",
            42,
            True,
            [_entry(1, BOB, 2000, board_rank=2), _entry(2, CY, 2000, board_rank=3)],
            "friends",
        )
    ),
    "error": error_frame("UNKNOWN_TYPE", "unknown frame type", 3),
    "error_without_id": error_frame("INVALID_JSON", "frame is not valid JSON"),
    "pong": Frame({"type": "pong", "id": 9}),
    "unsubscribed": Frame({"type": "unsubscribed", "id": "u", "board": "global"}),
    "unsubscribed_view": Frame({"type": "unsubscribed", "board": "global", "view": "around"}),
}


def _with_text_id(frame: dict) -> dict:
    """A frame as a binary client reads it: every id is text."""
    if "id" in frame:
        return {**frame, "id": str(frame["id"])}
    return frame


@pytest.mark.parametrize("name", SERVER_FRAMES)
def test_server_frames_come_back_as_their_json_form(name):
    frame = orjson.loads(SERVER_FRAMES[name].json())

    data = encode(frame)

    assert isinstance(data, bytes)
    assert decode_server(data) == _with_text_id(frame)


def test_an_integer_id_travels_as_its_decimal_text():
    data = encode({"type": "pong", "id": 9})

    assert pb.Envelope.FromString(data).id == "9"
    assert decode_server(data) == {"type": "pong", "id": "9"}


def test_only_a_players_view_has_board_ranks():
    players = decode_server(encode(orjson.loads(SERVER_FRAMES["players"].json())))
    top = decode_server(encode(orjson.loads(SERVER_FRAMES["top"].json())))

    assert [entry["board_rank"] for entry in players["entries"]] == [2, 3]
    assert all("board_rank" not in entry for entry in top["entries"])


def test_an_error_may_say_when_to_retry():
    frame = {"type": "error", "id": "a", "error": {"code": "X", "message": "m"}}
    frame["error"]["retry_after_ms"] = 1500

    assert decode_server(encode(frame)) == frame


def test_a_frame_type_without_a_binary_form_is_our_bug():
    with pytest.raises(ValueError):
        encode({"type": "action", "action_id": ACTION_ID})
    with pytest.raises(ValueError):
        encode({**orjson.loads(SERVER_FRAMES["applied"].json()), "status": "maybe"})


def _envelope(frame_id: str = "", **payload) -> bytes:
    return pb.Envelope(id=frame_id, **payload).SerializeToString()


def _json(**frame) -> str:
    return orjson.dumps(frame).decode()


# The same client frame both ways: (Envelope bytes, JSON text).
CLIENT_FRAMES = {
    "action": (
        _envelope(
            "17",
            action=pb.Action(
                action_id=ACTION_ID.upper(),
                action="score",
                params_json='{"points": 250, "note": "é"}',
                state_hash="6c3f",
                ts=1796000000000,
            ),
        ),
        _json(
            type="action",
            id="17",
            action_id=ACTION_ID.upper(),
            action="score",
            params={"points": 250, "note": "é"},
            state_hash="6c3f",
            ts=1796000000000,
        ),
    ),
    "action_without_params_or_ts": (
        _envelope(action=pb.Action(action_id=ACTION_ID, action="run", state_hash="")),
        _json(type="action", action_id=ACTION_ID, action="run", state_hash=""),
    ),
    "subscribe_defaults": (
        _envelope(subscribe=pb.Subscribe(board="daily")),
        _json(type="subscribe", board="daily"),
    ),
    "subscribe_top": (
        _envelope("top", subscribe=pb.Subscribe(board="global", view="top", limit=100)),
        _json(type="subscribe", id="top", board="global", view="top", limit=100),
    ),
    "subscribe_around_radius_zero": (
        _envelope(subscribe=pb.Subscribe(board="global", view="around", radius=0)),
        _json(type="subscribe", board="global", view="around", radius=0),
    ),
    "subscribe_around_rows": (
        _envelope(subscribe=pb.Subscribe(board="best_run", view="around", rows=5)),
        _json(type="subscribe", board="best_run", view="around", rows=5),
    ),
    "subscribe_players": (
        _envelope(
            "friends",
            subscribe=pb.Subscribe(board="global", view="players", players=[BOB.upper(), CY]),
        ),
        _json(type="subscribe", id="friends", board="global", view="players", players=[BOB, CY]),
    ),
    "subscribe_resuming": (
        _envelope(subscribe=pb.Subscribe(board="global", seq=0, period="all")),
        _json(type="subscribe", board="global", seq=0, period="all"),
    ),
    "unsubscribe_board": (
        _envelope("5", unsubscribe=pb.Unsubscribe(board="global")),
        _json(type="unsubscribe", id="5", board="global"),
    ),
    "unsubscribe_view": (
        _envelope(unsubscribe=pb.Unsubscribe(board="global", view="around")),
        _json(type="unsubscribe", board="global", view="around"),
    ),
    "ping": (_envelope("9", ping=pb.Ping()), _json(type="ping", id="9")),
    "ping_without_id": (_envelope(ping=pb.Ping()), _json(type="ping")),
}


@pytest.mark.parametrize("name", CLIENT_FRAMES)
def test_client_frames_parse_as_their_json_twin(name):
    data, text = CLIENT_FRAMES[name]

    frame = parse_fields(decode(data))

    assert frame == parse_frame(text)


def test_optional_fields_left_out_stay_out_so_defaults_apply():
    subscribe = decode(_envelope(subscribe=pb.Subscribe(board="global")))
    unsubscribe = decode(_envelope(unsubscribe=pb.Unsubscribe(board="global")))
    action = decode(_envelope(action=pb.Action(action_id=ACTION_ID, action="a", state_hash="")))

    assert subscribe == {"type": "subscribe", "board": "global"}
    assert unsubscribe == {"type": "unsubscribe", "board": "global"}
    assert "params" not in action
    assert parse_fields(action).params == {}


def test_set_optional_zero_values_are_kept():
    frame = decode(_envelope(subscribe=pb.Subscribe(board="g", radius=0, seq=0, period="")))

    assert (frame["radius"], frame["seq"], frame["period"]) == (0, 0, "")


def _code(data: bytes) -> str:
    """The code a binary frame is refused with, by the codec or by the shared validator."""
    with pytest.raises(FrameError) as caught:
        parse_fields(decode(data))
    assert caught.value.message
    return caught.value.code


def _json_code(text: str) -> str:
    with pytest.raises(FrameError) as caught:
        parse_frame(text)
    return caught.value.code


def _action(**fields) -> tuple[bytes, str]:
    given = {"action_id": ACTION_ID, "action": "score", "state_hash": "h", **fields}
    json_fields = {name: value for name, value in given.items() if name != "params_json"}
    return _envelope(action=pb.Action(**given)), _json(type="action", **json_fields)


def _subscribe(**fields) -> tuple[bytes, str]:
    given = {"board": "global", **fields}
    return _envelope(subscribe=pb.Subscribe(**given)), _json(type="subscribe", **given)


# Values out of range get the code their JSON twin gets, from the same validator.
OUT_OF_RANGE = {
    "action_id_not_a_uuid": _action(action_id="not-a-uuid"),
    "action_id_empty": _action(action_id=""),
    "action_empty": _action(action=""),
    "action_too_long": _action(action="a" * 65),
    "state_hash_too_long": _action(state_hash="h" * 129),
    "ts_negative": _action(ts=-1),
    "unknown_board": _subscribe(board="monthly"),
    "empty_board": _subscribe(board=""),
    "unknown_view": _subscribe(view="bottom"),
    "empty_view": _subscribe(view=""),
    "limit_zero": _subscribe(limit=0),
    "limit_over": _subscribe(limit=101),
    "limit_huge": _subscribe(limit=2**31 - 1),
    "radius_negative": _subscribe(view="around", radius=-1),
    "radius_over": _subscribe(view="around", radius=51),
    "rows_zero": _subscribe(view="around", rows=0),
    "rows_over": _subscribe(view="around", rows=102),
    "radius_and_rows": _subscribe(view="around", radius=2, rows=5),
    "players_missing": _subscribe(view="players"),
    "players_repeated": _subscribe(view="players", players=[BOB, BOB.upper()]),
    "players_not_uuids": _subscribe(view="players", players=[BOB, "friend"]),
    "players_too_many": _subscribe(
        view="players", players=[str(uuid.uuid4()) for _ in range(101)]
    ),
    "seq_negative": _subscribe(seq=-1),
    "period_without_seq": _subscribe(period="all"),
    "period_too_long": _subscribe(seq=1, period="p" * 33),
    "unsubscribe_unknown_view": (
        _envelope(unsubscribe=pb.Unsubscribe(board="global", view="friends")),
        _json(type="unsubscribe", board="global", view="friends"),
    ),
    "unsubscribe_unknown_board": (
        _envelope(unsubscribe=pb.Unsubscribe(board="moon")),
        _json(type="unsubscribe", board="moon"),
    ),
    "id_too_long": (_envelope("x" * 65, ping=pb.Ping()), _json(type="ping", id="x" * 65)),
}


@pytest.mark.parametrize("name", OUT_OF_RANGE)
def test_out_of_range_values_get_the_code_json_gets(name):
    data, text = OUT_OF_RANGE[name]

    code = _code(data)

    assert code == _json_code(text)
    assert code in {"INVALID_FIELD", "MISSING_FIELD", "UNKNOWN_BOARD", "UNSUPPORTED_VIEW"}


def test_refusals_keep_the_frame_id():
    data = _envelope("s1", subscribe=pb.Subscribe(board="moon"))

    with pytest.raises(FrameError) as caught:
        parse_fields(decode(data))

    assert caught.value.frame_id == "s1"


@pytest.mark.parametrize(
    "params_json", ["{", "[1]", "null", "5", '"points"', '{"a": 1} x', "{'a': 1}", "NaN"]
)
def test_params_json_must_be_a_json_object(params_json):
    data = _envelope("a7", action=pb.Action(action_id=ACTION_ID, params_json=params_json))

    with pytest.raises(FrameError) as caught:
        decode(data)

    assert (caught.value.code, caught.value.frame_id) == ("INVALID_JSON", "a7")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("welcome", pb.Welcome(player_id=ADA)),
        ("result", pb.Result(action_id=ACTION_ID, status=pb.RESULT_STATUS_APPLIED)),
        ("board", pb.Board(board="global")),
        ("error", pb.Error(code="X")),
        ("pong", pb.Pong()),
        ("unsubscribed", pb.Unsubscribed(board="global")),
    ],
)
def test_a_client_sending_a_server_frame_gets_unknown_type(payload, message):
    data = _envelope("x1", **{payload: message})

    with pytest.raises(FrameError) as caught:
        decode(data)

    assert (caught.value.code, caught.value.frame_id) == ("UNKNOWN_TYPE", "x1")


def test_a_server_reading_client_frames_gets_unknown_type():
    data, _ = CLIENT_FRAMES["ping"]

    with pytest.raises(FrameError) as caught:
        decode_server(data)

    assert caught.value.code == "UNKNOWN_TYPE"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "UNKNOWN_TYPE"),
        (_envelope("only-an-id"), "UNKNOWN_TYPE"),
        # A payload of a later version (field 99, length-delimited): unknown, not undecodable.
        (bytes([0x9A, 0x06, 0x00]), "UNKNOWN_TYPE"),
        (b"\x0a", "INVALID_FRAME"),
        (b"\x0a\x05ab", "INVALID_FRAME"),
        (b"\xff\xff\xff\xff", "INVALID_FRAME"),
        (b"\x00", "INVALID_FRAME"),
        # A string field that is not UTF-8.
        (b"\x0a\x02\xc3\x28\x2a\x00", "INVALID_FRAME"),
        (b'{"type": "ping"}', "INVALID_FRAME"),
    ],
)
def test_undecodable_or_empty_envelopes_are_refused(data, code):
    with pytest.raises(FrameError) as caught:
        decode(data)

    assert caught.value.code == code
    with pytest.raises(FrameError):
        decode_server(data)


def test_every_truncation_of_a_frame_is_refused():
    data, _ = CLIENT_FRAMES["action"]
    id_field = len(_envelope("17"))

    codes = [_code(data[:cut]) for cut in range(len(data))]

    assert set(codes) == {"INVALID_FRAME", "UNKNOWN_TYPE"}
    assert set(codes[id_field + 1 :]) == {"INVALID_FRAME"}


def test_garbage_bytes_only_ever_raise_frame_errors():
    codes = set()

    for seed in range(3000):
        rng = random.Random(seed)
        garbage = rng.randbytes(rng.randint(1, 200))
        try:
            parse_fields(decode(garbage))
        except FrameError as error:
            codes.add(error.code)
            assert error.message
        try:
            decode_server(garbage)
        except FrameError as error:
            codes.add(error.code)

    assert {"INVALID_FRAME", "UNKNOWN_TYPE"} <= codes


def test_garbage_inside_a_valid_payload_only_ever_raises_frame_errors():
    codes = set()

    for seed in range(3000):
        rng = random.Random(seed)
        inner = rng.randbytes(rng.randint(0, 60))
        # A length-delimited payload (fields 2-11) holding random bytes.
        tag = (rng.randint(2, 11) << 3) | 2
        data = bytes([tag, len(inner)]) + inner
        try:
            parse_fields(decode(data))
        except FrameError as error:
            codes.add(error.code)
        try:
            decode_server(data)
        except FrameError as error:
            codes.add(error.code)

    assert "INVALID_FRAME" in codes
    assert "UNKNOWN_TYPE" in codes


def test_a_count_too_big_for_32_bits_is_refused_not_cut_short():
    subscribe = pb.Subscribe(board="global", view="top", limit=2**32 + 5)

    with pytest.raises(FrameError) as refused:
        parse_fields(decode(_envelope("s", subscribe=subscribe)))
    assert refused.value.code == "INVALID_FIELD"
