"""The default game: "score" adds points to running totals; "run" records a finished run.

It exists to exercise the whole pipeline, and as the smallest example of a ruleset: two
actions, an `incr` board family and a `best` board with a subscore and metadata.
"""

from typing import Any

from game.rules.base import MAX_SCORE, Outcome, Refusal, Submission

MIN_POINTS = 1
MAX_POINTS = 1000
MAX_TAG_CHARS = 64

_POINTS_RULE = f'params must be exactly {{"points": <integer {MIN_POINTS}..{MAX_POINTS}>}}'
_RUN_RULE = (
    'params must be {"score": <integer>, "combo": <integer >= 0>, optionally "tag": <string of'
    f" up to {MAX_TAG_CHARS} characters>}}, with |score| below 2^53"
)
_TOTAL_BOARDS = ("global", "daily", "weekly")


class DefaultRuleset:
    """State {"total": int, "plays": int, "runs": int}; the total is the score on `global`."""

    name = "default"
    primary_board = "global"

    def initial_state(self) -> dict[str, Any]:
        return {"total": 0, "plays": 0}

    def score_of(self, state: dict[str, Any]) -> int:
        return state["total"]

    def apply(self, state: dict[str, Any], action: str, params: dict[str, Any]) -> Outcome:
        if action == "score":
            return _score(state, _points(params))
        if action == "run":
            return _run(state, params)
        raise Refusal("UNKNOWN_ACTION", 'unknown action; this game knows "score" and "run"')


def _score(state: dict[str, Any], points: int) -> Outcome:
    total = state["total"] + points
    return Outcome(
        state={**state, "total": total, "plays": state["plays"] + 1},
        board_deltas=dict.fromkeys(_TOTAL_BOARDS, points),
        score=total,
    )


def _run(state: dict[str, Any], params: dict[str, Any]) -> Outcome:
    """A run's score goes to `best_run`, which keeps each player's best (score, combo)."""
    if not params.keys() <= {"score", "combo", "tag"} or not {"score", "combo"} <= params.keys():
        raise Refusal("INVALID_PARAMS", _RUN_RULE)
    score, combo, tag = params["score"], params["combo"], params.get("tag")
    if type(score) is not int or type(combo) is not int or combo < 0:
        raise Refusal("INVALID_PARAMS", _RUN_RULE)
    if tag is not None and (type(tag) is not str or len(tag) > MAX_TAG_CHARS):
        raise Refusal("INVALID_PARAMS", _RUN_RULE)
    if abs(score) > MAX_SCORE:
        raise Refusal("SCORE_OUT_OF_RANGE", "a score must be below 2^53 either way")

    metadata = {"combo": combo} if tag is None else {"combo": combo, "tag": tag}
    return Outcome(
        state={**state, "runs": state.get("runs", 0) + 1},
        board_deltas={},
        score=state["total"],
        submissions={"best_run": Submission(score, combo, metadata)},
    )


def _points(params: dict[str, Any]) -> int:
    """Accept only {"points": n} with n an int in range; a bool is an int to Python, not here."""
    if params.keys() != {"points"}:
        raise Refusal("INVALID_PARAMS", _POINTS_RULE)

    points = params["points"]
    if type(points) is not int or not MIN_POINTS <= points <= MAX_POINTS:
        raise Refusal("INVALID_PARAMS", _POINTS_RULE)
    return points
