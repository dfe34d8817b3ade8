"""The default game: every "score" action adds 1 to 1000 points to the player's total.

It exists to exercise the whole pipeline, and as the smallest example of a ruleset.
"""

from typing import Any

from game.rules.base import Outcome, Refusal

MIN_POINTS = 1
MAX_POINTS = 1000

_PARAMS_RULE = f'params must be exactly {{"points": <integer {MIN_POINTS}..{MAX_POINTS}>}}'


class DefaultRuleset:
    """State {"total": int, "plays": int}; the total is the score on both boards."""

    name = "default"
    primary_board = "global"

    def initial_state(self) -> dict[str, Any]:
        return {"total": 0, "plays": 0}

    def score_of(self, state: dict[str, Any]) -> int:
        return state["total"]

    def apply(self, state: dict[str, Any], action: str, params: dict[str, Any]) -> Outcome:
        if action != "score":
            raise Refusal("UNKNOWN_ACTION", 'unknown action; this game knows only "score"')

        points = _points(params)
        total = state["total"] + points
        return Outcome(
            state={"total": total, "plays": state["plays"] + 1},
            board_deltas={"global": points, "daily": points},
            score=total,
        )


def _points(params: dict[str, Any]) -> int:
    """Accept only {"points": n} with n an int in range; a bool is an int to Python, not here."""
    if params.keys() != {"points"}:
        raise Refusal("INVALID_PARAMS", _PARAMS_RULE)

    points = params["points"]
    if type(points) is not int or not MIN_POINTS <= points <= MAX_POINTS:
        raise Refusal("INVALID_PARAMS", _PARAMS_RULE)
    return points
