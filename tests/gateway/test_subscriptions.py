"""A socket holds each (board, view) once, up to a cap, and around is always its own player."""

import uuid

import pytest

from gateway.frames import FrameError, SubscribeFrame, parse_frame
from gateway.subscriptions import MAX_SUBSCRIPTIONS, Subscriptions, spec_of
from gateway.views import ViewSpec

PLAYER = str(uuid.uuid4())
FRIENDS = (str(uuid.uuid4()), str(uuid.uuid4()))


def _frame(board: str, view: str, frame_id=None) -> SubscribeFrame:
    return SubscribeFrame(frame_id, board, view, players=FRIENDS)


def _full() -> Subscriptions:
    held = Subscriptions()
    for board in ("global", "daily", "weekly", "best_run", "fastest"):
        for view in ("top", "around", "players"):
            held.add(_frame(board, view))
    held.add(_frame("penalties", "top"))
    return held


def test_the_sixteenth_view_is_taken_and_the_seventeenth_refused_with_its_id():
    held = _full()

    with pytest.raises(FrameError) as caught:
        held.add(_frame("penalties", "around", frame_id="s17"))

    assert MAX_SUBSCRIPTIONS == 16
    assert caught.value.code == "TOO_MANY_SUBSCRIPTIONS"
    assert caught.value.frame_id == "s17"
    assert caught.value.violation is False


def test_subscribing_again_to_a_held_view_replaces_it_even_at_the_cap():
    held = _full()

    key = held.add(_frame("global", "around"))

    assert key == ("global", "around")


def test_a_view_given_back_makes_room_for_another():
    held = _full()

    gone = held.remove("fastest", "players")
    key = held.add(_frame("penalties", "players"))

    assert gone == [("fastest", "players")]
    assert key == ("penalties", "players")


def test_removing_a_board_drops_every_view_of_it_and_no_other():
    held = Subscriptions()
    for view in ("top", "around"):
        held.add(_frame("global", view))
    held.add(_frame("daily", "top"))

    gone = held.remove("global")

    assert sorted(gone) == [("global", "around"), ("global", "top")]
    assert held.boards() == {"daily"}
    assert held.remove("weekly") == []


def test_around_is_centred_on_the_sockets_player_with_the_frames_window():
    frame = parse_frame('{"type": "subscribe", "board": "global", "view": "around", "rows": 7}')

    spec = spec_of(frame, PLAYER)

    assert spec == ViewSpec("around", player_id=PLAYER, radius=5, rows=7)


def test_top_and_players_specs_keep_only_their_own_fields():
    top = spec_of(SubscribeFrame(None, "global", "top", limit=25, radius=3), PLAYER)
    players = spec_of(_frame("global", "players"), PLAYER)

    assert top == ViewSpec("top", limit=25)
    assert players == ViewSpec("players", players=FRIENDS)
