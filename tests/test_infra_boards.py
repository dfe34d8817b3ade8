"""Board definitions: the file studios edit, and the period every instant falls in."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.boards import DEFAULT_FILE, MAX_SCORE, Board, BoardsConfigError, load_boards


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("reset", "instant", "period", "start", "end"),
    [
        ("daily", "2026-12-04T23:59:59.999", "2026-12-04", "2026-12-04", "2026-12-05"),
        ("daily", "2026-12-05T00:00:00", "2026-12-05", "2026-12-05", "2026-12-06"),
        ("weekly", "2026-12-06T23:59:59", "2026-W49", "2026-11-30", "2026-12-07"),
        ("weekly", "2027-01-01T12:00:00", "2026-W53", "2026-12-28", "2027-01-04"),
        ("monthly", "2026-12-31T23:59:59", "2026-12", "2026-12-01", "2027-01-01"),
        ("monthly", "2028-02-29T10:00:00", "2028-02", "2028-02-01", "2028-03-01"),
        (
            "0 */6 * * *",
            "2026-12-04T05:59:59",
            "2026-12-04T00:00Z",
            "2026-12-04",
            "2026-12-04T06:00",
        ),
        (
            "0 */6 * * *",
            "2026-12-04T06:00:00",
            "2026-12-04T06:00Z",
            "2026-12-04T06:00",
            "2026-12-04T12:00",
        ),
        (
            "30 9 * * 1",
            "2026-12-04T12:00:00",
            "2026-11-30T09:30Z",
            "2026-11-30T09:30",
            "2026-12-07T09:30",
        ),
    ],
)
def test_each_reset_names_the_period_an_instant_falls_in(reset, instant, period, start, end):
    board = Board("b", reset=reset)

    key = board.period_at(_ms(instant))

    assert key == period
    assert board.period_span(key) == (_ms(start), _ms(end))
    assert board.is_period(key)


def test_an_all_time_board_has_one_period_without_end():
    board = Board("b")

    assert board.period_at(_ms("2026-12-04T00:00:00")) == "all"
    assert board.period_span("all") is None
    assert board.closed_at_ms("all") is None


@pytest.mark.parametrize(
    ("reset", "period"),
    [
        ("never", "2026-12-04"),
        ("daily", "all"),
        ("daily", "2026-1-5"),
        ("daily", "2026-02-30"),
        ("daily", "2026-12-04 "),
        ("weekly", "2026-W9"),
        ("weekly", "2026-W54"),
        ("weekly", "2026-12-04"),
        ("monthly", "2026-13"),
        ("monthly", "2026-1"),
        ("0 */6 * * *", "2026-12-04T05:00Z"),
        ("0 */6 * * *", "2026-12-04T06:00"),
        ("0 */6 * * *", "2026-12-04"),
    ],
)
def test_a_key_the_board_would_never_give_is_not_one_of_its_periods(reset, period):
    board = Board("b", reset=reset)

    assert not board.is_period(period)
    with pytest.raises(ValueError):
        board.period_span(period)


def test_a_period_closes_its_grace_after_it_ends():
    board = Board("b", reset="daily", late_grace_seconds=300)

    assert board.closed_at_ms("2026-12-04") == _ms("2026-12-05T00:05:00")


def test_the_shipped_file_defines_the_default_games_boards():
    boards = load_boards(DEFAULT_FILE)

    assert set(boards) == {"global", "daily", "weekly", "best_run"}
    assert boards["best_run"] == Board(
        "best_run", operator="best", subscore="desc", ranks="competition"
    )
    assert boards["global"].min_score == 0 and boards["global"].max_score == MAX_SCORE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "defines no"),
        ("[boards]", "defines no"),
        ("[boards.x\n", "not valid TOML"),
        ('[boards.X]\norder = "desc"', "ids are"),
        ("[boards.x]\nsize = 3", "unknown field"),
        ('[boards.x]\nid = "y"', "unknown field"),
        ('[boards.x]\norder = "up"', "order must be"),
        ('[boards.x]\noperator = "max"', "operator must be"),
        ('[boards.x]\nranks = "olympic"', "ranks must be"),
        ('[boards.x]\nsubscore = "yes"', "subscore"),
        ('[boards.x]\nreset = "hourly"', "reset must be"),
        ('[boards.x]\nreset = "* * *"', "reset must be"),
        ('[boards.x]\nreset = "0 0 * * * *"', "reset must be"),
        ("[boards.x]\nmin_score = 1.5", "min_score must be an integer"),
        ("[boards.x]\nmin_score = 5\nmax_score = 4", "min_score <= max_score"),
        ("[boards.x]\nmax_score = 9007199254740992", r"2\^53"),
        ("[boards.x]\nlate_grace_seconds = -1", "must not be negative"),
        ('[boards.x]\nlate_grace_seconds = "5"', "must be an integer"),
    ],
)
def test_a_bad_boards_file_stops_the_service_naming_the_fault(tmp_path, text, message):
    path = tmp_path / "boards.toml"
    path.write_text(text)

    with pytest.raises(BoardsConfigError, match=message):
        load_boards(path)


def test_a_missing_boards_file_says_so():
    with pytest.raises(BoardsConfigError, match="cannot read boards file"):
        load_boards(Path("/nonexistent/boards.toml"))
