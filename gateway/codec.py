"""Binary frames of the player protocol: podium.realtime.v1 Envelopes, as the JSON-shaped dicts
the rest of the gateway builds and checks.

A server frame is built once as a dict and encoded once per encoding, so both encodings say the
same thing. A client's Envelope is decoded to the dict its JSON text frame would parse to, so
frames.parse_fields checks both alike and refuses them with the same codes. Pure: no I/O.
"""

from typing import Any

import orjson
from google.protobuf.message import DecodeError
from podium.realtime.v1 import realtime_pb2 as pb

from gateway.frames import MAX_ID_CHARS, FrameError

_STATUS = {
    "applied": pb.RESULT_STATUS_APPLIED,
    "mismatch": pb.RESULT_STATUS_MISMATCH,
    "rejected": pb.RESULT_STATUS_REJECTED,
}
_STATUS_NAMES = {number: name for name, number in _STATUS.items()}


def encode(frame: dict) -> bytes:
    """Encode a server frame of the JSON shape (welcome, result, board, error, pong,
    unsubscribed) as Envelope bytes. An integer "id" travels as its decimal text.

    A frame type with no binary form is a bug of ours, not of the client: ValueError.
    """
    encoder = _ENCODERS.get(frame.get("type"))
    if encoder is None:
        raise ValueError(f"no binary form for frame type {frame.get('type')!r}")

    frame_id = frame.get("id")
    envelope = pb.Envelope(id="" if frame_id is None else str(frame_id), **encoder(frame))
    return envelope.SerializeToString()


def decode(data: bytes) -> dict:
    """Decode a client's Envelope to the dict its JSON text frame would parse to.

    Optional fields the client left out are left out of the dict, so parse_fields gives them
    the JSON defaults. FrameError: INVALID_FRAME when the bytes are not an Envelope,
    UNKNOWN_TYPE when it has no client payload, INVALID_JSON when params_json is not a JSON
    object, INVALID_FIELD for an over-long id.
    """
    envelope = _envelope(data)
    frame_id = _client_id(envelope.id)
    kind = envelope.WhichOneof("payload")
    decoder = _CLIENT_DECODERS.get(kind)
    if decoder is None:
        raise FrameError("UNKNOWN_TYPE", "unknown frame type", frame_id)

    frame = decoder(getattr(envelope, kind), frame_id)
    if frame_id is not None:
        frame["id"] = frame_id
    return frame


def decode_server(data: bytes) -> dict:
    """Decode a server's Envelope back to its JSON-shaped frame, for clients and tests.

    The "id" comes back as text, however the client first sent it. FrameError as decode().
    """
    envelope = _envelope(data)
    kind = envelope.WhichOneof("payload")
    decoder = _SERVER_DECODERS.get(kind)
    if decoder is None:
        raise FrameError("UNKNOWN_TYPE", "unknown frame type")

    frame = decoder(getattr(envelope, kind))
    if envelope.id:
        frame["id"] = envelope.id
    return frame


def _envelope(data: bytes) -> pb.Envelope:
    try:
        return pb.Envelope.FromString(data)
    except DecodeError:
        raise FrameError("INVALID_FRAME", "frame is not a podium.realtime.v1 Envelope") from None


def _client_id(frame_id: str) -> str | None:
    """The id a JSON frame would have had; checked first, as parse_frame checks it first."""
    if not frame_id:
        return None
    if len(frame_id) > MAX_ID_CHARS:
        raise FrameError("INVALID_FIELD", "field 'id' must be a short string or an integer")
    return frame_id


def _json_object(text: str, name: str, frame_id: Any = None) -> dict:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("INVALID_JSON", f"'{name}' is not valid JSON", frame_id) from None
    if not isinstance(value, dict):
        raise FrameError("INVALID_JSON", f"'{name}' must be a JSON object", frame_id)
    return value


def _present(message, names: tuple[str, ...]) -> dict:
    """The optional fields the sender set, by name; unset ones are left out."""
    return {name: getattr(message, name) for name in names if message.HasField(name)}


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# Client frames: Envelope payload -> JSON-shaped dict.


def _decode_action(action: pb.Action, frame_id: str | None) -> dict:
    frame = {
        "type": "action",
        "action_id": action.action_id,
        "action": action.action,
        "state_hash": action.state_hash,
        "ts": action.ts,
    }
    if action.params_json:
        frame["params"] = _json_object(action.params_json, "params_json", frame_id)
    return frame


def _decode_subscribe(subscribe: pb.Subscribe, frame_id: str | None) -> dict:
    frame = {"type": "subscribe", "board": subscribe.board}
    frame.update(_present(subscribe, ("view", "limit", "radius", "rows", "seq", "period")))
    if subscribe.players:
        frame["players"] = list(subscribe.players)
    return frame


def _decode_unsubscribe(unsubscribe: pb.Unsubscribe, frame_id: str | None) -> dict:
    return {"type": "unsubscribe", "board": unsubscribe.board, **_present(unsubscribe, ("view",))}


def _decode_ping(ping: pb.Ping, frame_id: str | None) -> dict:
    return {"type": "ping"}


_CLIENT_DECODERS = {
    "action": _decode_action,
    "subscribe": _decode_subscribe,
    "unsubscribe": _decode_unsubscribe,
    "ping": _decode_ping,
}


# Server frames: JSON-shaped dict -> Envelope payload, as keyword arguments of Envelope.


def _encode_welcome(frame: dict) -> dict:
    welcome = pb.Welcome(
        player_id=frame["player_id"],
        state_json=_json_text(frame["state"]),
        state_hash=frame["state_hash"],
    )
    return {"welcome": welcome}


def _encode_result(frame: dict) -> dict:
    status = _STATUS.get(frame["status"])
    if status is None:
        raise ValueError(f"no binary form for result status {frame['status']!r}")

    error = frame.get("error")
    result = pb.Result(
        action_id=frame["action_id"],
        status=status,
        state_json=_json_text(frame["state"]),
        state_hash=frame["state_hash"],
        score=frame["score"],
        error=None if error is None else _error_message(error),
    )
    return {"result": result}


def _encode_board(frame: dict) -> dict:
    board = pb.Board(
        board=frame["board"],
        view=frame["view"],
        period=frame["period"],
        seq=frame["seq"],
        snapshot=frame["snapshot"],
        entries=[_entry_message(entry) for entry in frame["entries"]],
    )
    return {"board": board}


def _entry_message(entry: dict) -> pb.Entry:
    metadata = entry["metadata"]
    return pb.Entry(
        rank=entry["rank"],
        board_rank=entry.get("board_rank"),
        player_id=entry["player_id"],
        username=entry["username"],
        score=entry["score"],
        subscore=entry["subscore"],
        metadata_json="" if metadata is None else _json_text(metadata),
    )


def _encode_error(frame: dict) -> dict:
    return {"error": _error_message(frame["error"])}


def _error_message(error: dict) -> pb.Error:
    return pb.Error(
        code=error["code"],
        message=error["message"],
        retry_after_ms=error.get("retry_after_ms"),
    )


def _encode_pong(frame: dict) -> dict:
    return {"pong": pb.Pong()}


def _encode_unsubscribed(frame: dict) -> dict:
    return {"unsubscribed": pb.Unsubscribed(board=frame["board"], view=frame.get("view"))}


_ENCODERS = {
    "welcome": _encode_welcome,
    "result": _encode_result,
    "board": _encode_board,
    "error": _encode_error,
    "pong": _encode_pong,
    "unsubscribed": _encode_unsubscribed,
}


# Server frames back: Envelope payload -> JSON-shaped dict.


def _decode_welcome(welcome: pb.Welcome) -> dict:
    return {
        "type": "welcome",
        "player_id": welcome.player_id,
        "state": _json_object(welcome.state_json or "{}", "state_json"),
        "state_hash": welcome.state_hash,
    }


def _decode_result(result: pb.Result) -> dict:
    status = _STATUS_NAMES.get(result.status)
    if status is None:
        raise FrameError("INVALID_FRAME", "result has no known status")

    frame = {
        "type": "result",
        "action_id": result.action_id,
        "status": status,
        "state": _json_object(result.state_json or "{}", "state_json"),
        "state_hash": result.state_hash,
        "score": result.score,
    }
    if result.HasField("error"):
        frame["error"] = _error_body(result.error)
    return frame


def _decode_board(board: pb.Board) -> dict:
    return {
        "type": "board",
        "board": board.board,
        "view": board.view,
        "period": board.period,
        "seq": board.seq,
        "snapshot": board.snapshot,
        "entries": [_entry_body(entry) for entry in board.entries],
    }


def _entry_body(entry: pb.Entry) -> dict:
    metadata = entry.metadata_json
    body = {
        "rank": entry.rank,
        "player_id": entry.player_id,
        "username": entry.username,
        "score": entry.score,
        "subscore": entry.subscore,
        "metadata": _json_object(metadata, "metadata_json") if metadata else None,
    }
    body.update(_present(entry, ("board_rank",)))
    return body


def _decode_error(error: pb.Error) -> dict:
    return {"type": "error", "error": _error_body(error)}


def _error_body(error: pb.Error) -> dict:
    return {"code": error.code, "message": error.message, **_present(error, ("retry_after_ms",))}


def _decode_pong(pong: pb.Pong) -> dict:
    return {"type": "pong"}


def _decode_unsubscribed(unsubscribed: pb.Unsubscribed) -> dict:
    return {
        "type": "unsubscribed",
        "board": unsubscribed.board,
        **_present(unsubscribed, ("view",)),
    }


_SERVER_DECODERS = {
    "welcome": _decode_welcome,
    "result": _decode_result,
    "board": _decode_board,
    "error": _decode_error,
    "pong": _decode_pong,
    "unsubscribed": _decode_unsubscribed,
}
