"""Entries and board frames read the same on REST and WebSocket; player lists are checked."""

import uuid

import pytest
from podium.ranking.v1 import ranking_pb2

from gateway.views import Resume, board_frame, entry_body, player_list

PLAYER = str(uuid.uuid4())


def _entry(**fields) -> ranking_pb2.Entry:
    defaults = {"rank": 2, "board_rank": 7, "player_id": PLAYER, "username": "ada", "score": 90}
    return ranking_pb2.Entry(**(defaults | fields))


def test_an_entry_decodes_its_metadata_and_shows_its_subscore():
    body = entry_body(_entry(subscore=12, metadata_json='{"combo": 12, "tag": "x"}'))

    assert body == {
        "rank": 2,
        "player_id": PLAYER,
        "username": "ada",
        "score": 90,
        "subscore": 12,
        "metadata": {"combo": 12, "tag": "x"},
    }


def test_an_entry_without_metadata_shows_null_and_board_rank_only_when_asked():
    plain = entry_body(_entry())
    among = entry_body(_entry(), board_rank=True)

    assert plain["metadata"] is None and "board_rank" not in plain
    assert among["board_rank"] == 7 and among["rank"] == 2


def test_a_board_frame_names_its_view_and_echoes_the_id():
    frame = board_frame("global", "players", "all", 5, True, [_entry()], "f1")

    assert {k: v for k, v in frame.items() if k != "entries"} == {
        "type": "board",
        "id": "f1",
        "board": "global",
        "view": "players",
        "period": "all",
        "seq": 5,
        "snapshot": True,
    }
    assert frame["entries"][0]["board_rank"] == 7


def test_a_frame_without_an_id_has_no_id_field():
    frame = board_frame("global", "top", "all", 5, False, [], None)

    assert "id" not in frame and frame["entries"] == []


def test_a_resume_matches_only_the_same_seq_and_the_same_period_when_given():
    assert Resume(5).unchanged(5, "2026-12-04")
    assert Resume(5, "2026-12-04").unchanged(5, "2026-12-04")
    assert not Resume(5, "2026-12-03").unchanged(5, "2026-12-04")
    assert not Resume(4).unchanged(5, "all")


def test_a_player_list_is_canonical_and_in_the_order_given():
    ids = [str(uuid.uuid4()) for _ in range(3)]

    listed = player_list([ids[2].upper(), ids[0], ids[1]])

    assert listed == (ids[2], ids[0], ids[1])


@pytest.mark.parametrize(
    "ids",
    [
        [],
        [str(uuid.uuid4()) for _ in range(101)],
        [""],
        ["not-a-uuid"],
        [uuid.uuid4().hex],
        [PLAYER, PLAYER],
        [PLAYER, PLAYER.upper()],
    ],
)
def test_a_bad_player_list_is_refused(ids):
    with pytest.raises(ValueError):
        player_list(ids)
