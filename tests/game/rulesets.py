"""Rulesets with the bugs a studio's own could have, for the workers' failure paths.

Workers load them like any studio ruleset: by object in-process, or in a worker process by
PODIUM_RULESET=tests.game.rulesets:<Class> (the repository root is on the path there).
"""

import os

from game.rules.base import Outcome, Submission


class ExplodingRuleset:
    """Divides 100 by the points it is given, and nothing stops a zero: {"points": 0} is
    valid JSON with impossible params, and raises ZeroDivisionError every time."""

    name = "exploding"
    primary_board = "global"

    def initial_state(self) -> dict:
        return {"total": 0}

    def score_of(self, state: dict) -> int:
        return state["total"]

    def apply(self, state: dict, action: str, params: dict) -> Outcome:
        total = state["total"] + 100 // params["points"]
        return Outcome(state={"total": total}, board_deltas={"global": total}, score=total)


class CrashingRuleset(ExplodingRuleset):
    """Ends the whole worker process on {"points": 0}, as a crash in native code would."""

    name = "crashing"

    def apply(self, state: dict, action: str, params: dict) -> Outcome:
        if params.get("points") == 0:
            os._exit(70)
        return super().apply(state, action, params)


class FileReadingRuleset(ExplodingRuleset):
    """Reads a file on {"points": 0}, which is not there: an OSError out of a ruleset is its
    own fault, not a sign that a store is down."""

    name = "file-reading"

    def apply(self, state: dict, action: str, params: dict) -> Outcome:
        if params.get("points") == 0:
            with open("/nonexistent/podium/rules.txt") as rules:
                rules.read()
        return super().apply(state, action, params)


class FloatRuleset:
    """States holding floats: "set" stores 1e16, "div" divides what is there by 7."""

    name = "float"
    primary_board = "global"

    def initial_state(self) -> dict:
        return {"v": 0}

    def score_of(self, state: dict) -> int:
        return 0

    def apply(self, state: dict, action: str, params: dict) -> Outcome:
        value = 1e16 if action == "set" else state["v"] // 7
        return Outcome(state={"v": value}, board_deltas={}, score=0)


class SubmittingRuleset:
    """Sends {"board", "score", "subscore"?, "metadata"?} straight to the named board, to reach
    every operator and rule the default game does not use."""

    name = "submitting"
    primary_board = "global"

    def initial_state(self) -> dict:
        return {"submitted": 0}

    def score_of(self, state: dict) -> int:
        return state["submitted"]

    def apply(self, state: dict, action: str, params: dict) -> Outcome:
        submission = Submission(params["score"], params.get("subscore", 0), params.get("metadata"))
        count = state["submitted"] + 1
        return Outcome(
            state={"submitted": count},
            board_deltas={},
            score=count,
            submissions={params["board"]: submission},
        )
