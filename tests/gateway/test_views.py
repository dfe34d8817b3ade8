"""Entries read as the protocol says; player lists are checked."""

import uuid

import pytest
from podium.ranking.v1 import ranking_pb2

from gateway.views import entry_body, player_list

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
