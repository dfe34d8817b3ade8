"""The default ruleset and load_ruleset, as pure functions."""

import pytest

from game.rules import load_ruleset
from game.rules.base import MAX_SCORE, Refusal, Submission
from game.rules.default import DefaultRuleset


def test_score_adds_points_to_total_and_the_three_total_boards():
    rules = DefaultRuleset()
    state = {"total": 10, "plays": 2}

    outcome = rules.apply(state, "score", {"points": 7})

    assert outcome.state == {"total": 17, "plays": 3}
    assert outcome.board_deltas == {"global": 7, "daily": 7, "weekly": 7}
    assert outcome.score == 17
    assert state == {"total": 10, "plays": 2}


@pytest.mark.parametrize("points", [1, 1000])
def test_points_at_the_range_ends_are_accepted(points):
    rules = DefaultRuleset()

    outcome = rules.apply(rules.initial_state(), "score", {"points": points})

    assert outcome.score == points


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"pts": 5},
        {"points": 5, "extra": 1},
        {"points": "5"},
        {"points": 5.0},
        {"points": True},
        {"points": None},
        {"points": [5]},
        {"points": 0},
        {"points": -1},
        {"points": 1001},
        {"points": 2**70},
    ],
    ids=[
        "missing",
        "wrong-key",
        "extra-key",
        "string",
        "float",
        "bool",
        "null",
        "list",
        "zero",
        "negative",
        "above-max",
        "huge",
    ],
)
def test_bad_params_are_refused_as_invalid_params(params):
    rules = DefaultRuleset()

    with pytest.raises(Refusal) as refused:
        rules.apply(rules.initial_state(), "score", params)

    assert refused.value.code == "INVALID_PARAMS"
    assert "points" in refused.value.message


@pytest.mark.parametrize("action", ["jump", "", "Score"])
def test_unknown_action_is_refused_even_with_good_params(action):
    rules = DefaultRuleset()

    with pytest.raises(Refusal) as refused:
        rules.apply(rules.initial_state(), action, {"points": 5})

    assert refused.value.code == "UNKNOWN_ACTION"


def test_initial_state_and_its_score():
    rules = DefaultRuleset()

    state = rules.initial_state()

    assert state == {"total": 0, "plays": 0}
    assert rules.score_of(state) == 0
    assert rules.score_of({"total": 42, "plays": 3}) == 42


def test_load_ruleset_by_name():
    ruleset = load_ruleset("default")

    assert ruleset.name == "default"
    assert ruleset.primary_board == "global"


def test_load_ruleset_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="unknown ruleset"):
        load_ruleset("chess")


def test_load_ruleset_by_import_path():
    ruleset = load_ruleset("tests.game.rulesets:ExplodingRuleset")

    assert (ruleset.name, ruleset.primary_board) == ("exploding", "global")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module:Ruleset", "cannot import ruleset module"),
        ("tests.game.rulesets:NoSuchClass", "unknown ruleset"),
        ("game.rules.base:Outcome", "could not be made"),
        ("collections:OrderedDict", "lacks one of"),
    ],
)
def test_load_ruleset_refuses_a_path_that_is_not_a_ruleset(path, message):
    with pytest.raises(ValueError, match=message):
        load_ruleset(path)


def test_a_run_submits_score_combo_and_tag_to_best_run():
    rules = DefaultRuleset()
    state = {"total": 10, "plays": 2}

    outcome = rules.apply(state, "run", {"score": 100, "combo": 5, "tag": "A"})

    assert outcome.submissions == {"best_run": Submission(100, 5, {"combo": 5, "tag": "A"})}
    assert outcome.board_deltas == {}
    assert (outcome.state, outcome.score) == ({"total": 10, "plays": 2, "runs": 1}, 10)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"score": 1},
        {"score": 1, "combo": -1},
        {"score": 1.0, "combo": 1},
        {"score": True, "combo": 1},
        {"score": 1, "combo": 1, "tag": 5},
        {"score": 1, "combo": 1, "tag": "x" * 65},
        {"score": 1, "combo": 1, "extra": 1},
    ],
)
def test_bad_runs_are_refused_as_invalid_params(params):
    with pytest.raises(Refusal) as refused:
        DefaultRuleset().apply({"total": 0, "plays": 0}, "run", params)

    assert refused.value.code == "INVALID_PARAMS"


@pytest.mark.parametrize("score", [MAX_SCORE + 1, -MAX_SCORE - 1, 2**70])
def test_a_run_beyond_what_boards_hold_exactly_is_refused(score):
    with pytest.raises(Refusal) as refused:
        DefaultRuleset().apply({"total": 0, "plays": 0}, "run", {"score": score, "combo": 0})

    assert refused.value.code == "SCORE_OUT_OF_RANGE"
