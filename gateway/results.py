"""Turn game results and player state into protocol frames."""

from typing import Any

import orjson
from podium.game.v1 import game_pb2

from gateway.wire import Frame

_STATUS = {
    game_pb2.ACTION_STATUS_APPLIED: "applied",
    game_pb2.ACTION_STATUS_MISMATCH: "mismatch",
    game_pb2.ACTION_STATUS_REJECTED: "rejected",
}


def result_body(result: game_pb2.ActionResult) -> dict:
    """An action's result as REST answers it and `result` frames carry it."""
    body = {
        "action_id": result.action_id,
        "status": _STATUS.get(result.status, "rejected"),
        "state": orjson.loads(result.state_json or "{}"),
        "state_hash": result.state_hash,
        "score": result.score,
    }
    if result.status == game_pb2.ACTION_STATUS_REJECTED:
        body["error"] = {"code": result.error_code, "message": result.error_message}
    return body


def result_frame(result: game_pb2.ActionResult, frame_id: Any = None) -> Frame:
    frame = {"type": "result", **result_body(result)}
    if frame_id is not None:
        frame["id"] = frame_id
    return Frame(frame)


def welcome_frame(player_id: str, state_json: str, state_hash: str) -> Frame:
    frame = {
        "type": "welcome",
        "player_id": player_id,
        "state": orjson.loads(state_json or "{}"),
        "state_hash": state_hash,
    }
    return Frame(frame)


def error_frame(
    code: str, message: str, frame_id: Any = None, retry_after_ms: int | None = None
) -> Frame:
    error: dict = {"code": code, "message": message}
    if retry_after_ms is not None:
        error["retry_after_ms"] = retry_after_ms
    frame: dict = {"type": "error", "error": error}
    if frame_id is not None:
        frame["id"] = frame_id
    return Frame(frame)
