"""Live board views over real sockets: around and players views that follow the board, one
socket's views side by side, resuming from the last seq seen, the cap on subscriptions, a
subscriber away for 200 changes catching up with one who stayed, and one GetViews call per
change however many sockets watch.

Tests that need exact ranks play `run` on best_run from a floor above every earlier test's
(_floor), so their players are the head of that board whatever ran before them.
"""

import asyncio
import itertools
import time

import orjson

from devstack.client import PlayerClient
from gateway.clients import connect
from gateway.config import GatewaySettings
from gateway.fanout import Fanout
from gateway.views import VIEWS, ViewSpec

PASSWORD = "correct horse battery"
_FLOORS = itertools.count(1)


def _floor() -> int:
    """A score above every run of the tests before this one."""
    return next(_FLOORS) * 10**9


async def _run(player: PlayerClient, score: int, combo: int = 0) -> None:
    result = await player.play("run", {"score": score, "combo": combo})
    assert result["status"] == "applied", result


def _placed(frame: dict, *players: PlayerClient) -> list[tuple]:
    """The frame's entries as (player, rank[, board_rank]), naming players by their index."""
    index = {player.player_id: n for n, player in enumerate(players)}
    placed = []
    for entry in frame["entries"]:
        row = (index.get(entry["player_id"], entry["player_id"]), entry["rank"])
        placed.append(row + ((entry["board_rank"],) if "board_rank" in entry else ()))
    return placed


async def _subscribe(player: PlayerClient, frame_id: str, board: str, view: str, **fields) -> dict:
    """Subscribe and return the answer (the frame echoing `frame_id`)."""
    subscribe = {"type": "subscribe", "id": frame_id, "board": board, "view": view, **fields}
    await player.send(subscribe)
    return await player.receive("board", id=frame_id)


async def _quiet(player: PlayerClient) -> None:
    """Let whatever the gateway had for this socket arrive: a pong, then a moment."""
    await player.send({"type": "ping", "id": "quiet"})
    await player.receive("pong", id="quiet")
    await asyncio.sleep(0.3)


async def test_around_and_players_views_of_one_socket_follow_the_board(players):
    x, y, z, w = await asyncio.gather(*(players() for _ in range(4)))
    floor = _floor()
    for player, height in ((x, 30), (y, 20), (z, 10), (w, 0)):
        await _run(player, floor + height)
    friends = [y.player_id, z.player_id, w.player_id]

    around = await _subscribe(y, "a", "best_run", "around", radius=1)
    among = await _subscribe(y, "p", "best_run", "players", players=friends)
    top = await _subscribe(y, "t", "best_run", "top", limit=2)
    await _run(z, floor + 40, combo=7)
    around_after = await y.board("around", lambda f: f["seq"] > around["seq"])
    among_after = await y.board("players", lambda f: f["seq"] > among["seq"])
    top_after = await y.board("top", lambda f: f["seq"] > top["seq"])

    assert _placed(around, x, y, z, w) == [(0, 1), (1, 2), (2, 3)]
    assert _placed(around_after, x, y, z, w) == [(0, 2), (1, 3), (3, 4)]
    assert _placed(among, x, y, z, w) == [(1, 1, 2), (2, 2, 3), (3, 3, 4)]
    assert _placed(among_after, x, y, z, w) == [(2, 1, 1), (1, 2, 3), (3, 3, 4)]
    assert _placed(top_after, x, y, z, w) == [(2, 1), (0, 2)]
    assert top_after["entries"][0]["subscore"] == 7
    assert top_after["entries"][0]["metadata"] == {"combo": 7}
    assert [f["snapshot"] for f in (around, among, top)] == [True] * 3
    assert [f["snapshot"] for f in (around_after, among_after, top_after)] == [False] * 3
    assert {(f["board"], f["view"], f["period"]) for f in (around_after, among_after)} == {
        ("best_run", "around", "all"),
        ("best_run", "players", "all"),
    }


async def test_around_a_player_not_on_the_board_is_empty_until_they_play(players):
    newcomer = await players()

    empty = await _subscribe(newcomer, "n", "best_run", "around")
    await _run(newcomer, _floor())
    joined = await newcomer.board("around", lambda f: f["entries"])

    assert (empty["entries"], empty["snapshot"]) == ([], True)
    assert joined["entries"][0]["player_id"] == newcomer.player_id
    assert joined["entries"][0]["rank"] == 1


async def test_resuming_with_the_last_seq_seen_says_whether_anything_was_missed(players):
    player = await players()
    await _run(player, _floor())
    views = {
        "top": {"limit": 5},
        "around": {"radius": 2},
        "players": {"players": [player.player_id]},
    }
    seen = {
        view: await _subscribe(player, view, "best_run", view, **f) for view, f in views.items()
    }
    seq = seen["top"]["seq"]
    await player.close()

    await player.connect()
    answers = {}
    for name, resume in {
        "same": {"seq": seq},
        "same_period": {"seq": seq, "period": "all"},
        "older": {"seq": seq - 1},
        "other_period": {"seq": seq, "period": "2026-12-04"},
    }.items():
        for view, fields in views.items():
            answer = await _subscribe(
                player, f"{name}-{view}", "best_run", view, **fields, **resume
            )
            answers[name, view] = answer

    assert {frame["seq"] for frame in seen.values()} == {seq}
    for view in VIEWS:
        assert answers["same", view]["snapshot"] is False
        assert answers["same_period", view]["snapshot"] is False
        assert answers["older", view]["snapshot"] is True
        assert answers["other_period", view]["snapshot"] is True
        assert {answers[name, view]["seq"] for name in ("same", "older")} == {seq}
        assert answers["same", view]["entries"] == seen[view]["entries"]


async def test_unsubscribing_one_view_keeps_the_others_and_the_board_drops_all(players):
    player, other = await players(), await players()
    floor = _floor()
    await _run(player, floor)
    views = {"top": {}, "around": {}, "players": {"players": [player.player_id]}}
    seen = [await _subscribe(player, view, "best_run", view, **f) for view, f in views.items()]
    seq = seen[0]["seq"]
    await _subscribe(other, "clock", "best_run", "top")

    await player.send({"type": "unsubscribe", "id": "u1", "board": "best_run", "view": "around"})
    left_around = await player.receive("unsubscribed", id="u1")
    await _run(player, floor + 1)
    await player.board("top", lambda f: f["seq"] > seq)
    await player.board("players", lambda f: f["seq"] > seq)
    await _quiet(player)
    around_after = [f for f in player.frames if f.get("view") == "around"]
    await player.send({"type": "unsubscribe", "id": "u2", "board": "best_run"})
    left_all = await player.receive("unsubscribed", id="u2")
    await _run(other, floor + 2)
    await other.board("top", lambda f: f["entries"][0]["player_id"] == other.player_id)
    await _quiet(player)

    assert left_around == {
        "type": "unsubscribed",
        "id": "u1",
        "board": "best_run",
        "view": "around",
    }
    assert left_all == {"type": "unsubscribed", "id": "u2", "board": "best_run"}
    assert around_after == []
    assert [f for f in player.frames if f["type"] == "board"] == []


async def test_a_socket_watches_at_most_sixteen_views(players):
    player = await players()
    boards = ("global", "daily", "weekly", "best_run", "fastest")
    wanted = [(board, view) for board in boards for view in VIEWS] + [("hourly_set", "top")]
    mine = {"players": [player.player_id]}

    answers = [await _subscribe(player, str(n), *key, **mine) for n, key in enumerate(wanted)]
    await player.send({"type": "subscribe", "id": "17", "board": "penalties"})
    refused = await player.receive("error", id="17")
    again = await _subscribe(player, "again", "global", "top", limit=1)
    await player.send({"type": "unsubscribe", "id": "u", "board": "fastest", "view": "players"})
    await player.receive("unsubscribed", id="u")
    room = await _subscribe(player, "room", "penalties", "top")

    assert [(answer["board"], answer["view"]) for answer in answers] == wanted
    assert refused["error"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    assert (again["board"], again["view"]) == ("global", "top")
    assert (room["board"], room["view"]) == ("penalties", "top")


async def test_a_subscriber_away_for_200_changes_resumes_to_the_view_of_one_who_stayed(
    players, http, stack
):
    """Ten players make 200 score changes on global while one of the watcher's two sockets is
    closed for five seconds; back, it resumes from the seq it saw last, and both sockets settle
    on the same top and around views, which are also what REST reads at the final seq."""
    stayed, *actors = await asyncio.gather(*(players() for _ in range(11)))
    await stayed.play("score", {"points": 500})
    roaming = PlayerClient(http, stack.url)
    await roaming.login(stayed.username, PASSWORD)
    await roaming.connect()
    views = {"top": {"limit": 10}, "around": {"radius": 2}}
    for view, fields in views.items():
        await _subscribe(stayed, view, "global", view, **fields)
    left = [await _subscribe(roaming, view, "global", view, **f) for view, f in views.items()]
    await roaming.close()
    away_since = time.monotonic()

    async def play_twenty(index: int, actor: PlayerClient) -> None:
        for turn in range(20):
            result = await actor.play("score", {"points": (index * 37 + turn * 53) % 1000 + 1})
            assert result["status"] == "applied", result

    await asyncio.gather(*(play_twenty(n, actor) for n, actor in enumerate(actors)))
    await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - away_since)))
    await roaming.connect()
    last_seen = max(frame["seq"] for frame in left)
    back = {
        view: await _subscribe(roaming, f"back-{view}", "global", view, seq=last_seen, **f)
        for view, f in views.items()
    }
    top_now = await stayed.call("GET", "/v1/boards/global/top?limit=10")
    around_now = await stayed.call("GET", f"/v1/boards/global/around/{stayed.player_id}?radius=2")

    def settled(frame: dict) -> bool:
        return frame["seq"] >= top_now["seq"]

    final_stayed = {view: await stayed.board(view, settled) for view in views}
    final_back = {
        view: back[view] if settled(back[view]) else await roaming.board(view, settled)
        for view in views
    }
    await roaming.close()

    assert [frame["snapshot"] for frame in back.values()] == [True, True]
    for view in views:
        assert final_back[view]["seq"] == final_stayed[view]["seq"] == top_now["seq"]
        assert final_back[view]["entries"] == final_stayed[view]["entries"]
    assert final_stayed["top"]["entries"] == top_now["entries"]
    assert final_stayed["around"]["entries"] == around_now["entries"]


class _Inbox:
    """A subscriber of the fan-out that keeps what it is handed."""

    def __init__(self) -> None:
        self.frames: list[tuple[tuple[str, str], str, bool]] = []

    def __call__(self, key: tuple[str, str], frame: str, keep: bool) -> None:
        self.frames.append((key, frame, keep))


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_one_get_views_call_refreshes_every_watched_view_each_encoded_once(players, stack):
    """Twenty subscribers of two distinct views: a change costs one GetViews carrying both
    views, and subscribers of the same view are handed the very same encoded frame."""
    x, y, z, w = await asyncio.gather(*(players() for _ in range(4)))
    floor = _floor()
    for player, height in ((x, 20), (y, 10), (z, 5), (w, 0)):
        await _run(player, floor + height)
    specs = [
        ViewSpec("around", player_id=y.player_id, radius=1),
        ViewSpec("players", players=(x.player_id, z.player_id)),
    ]
    settings = GatewaySettings(
        namespace=stack.names.namespace, ranking_target=stack.ranking_target
    )
    clients = await connect(settings)
    read_views, calls = clients.get_views, []

    async def counted(board: str, asked: list[ViewSpec]):
        calls.append(len(asked))
        return await read_views(board, asked)

    clients.get_views = counted
    fanout = Fanout(clients, settings.board_view_size)
    inboxes = [_Inbox() for _ in range(20)]
    try:
        for n, inbox in enumerate(inboxes):
            fanout.subscribe("best_run", inbox, specs[n % 2], frame_id=n)
        await _until(lambda: all(inbox.frames for inbox in inboxes))
        await asyncio.sleep(0.5)
        answers = [inbox.frames.pop(0) for inbox in inboxes]
        before, calls[:] = list(calls), []
        await _run(z, floor + 30)
        await _until(lambda: all(inbox.frames for inbox in inboxes))
        await asyncio.sleep(0.5)
    finally:
        await fanout.close()
        await clients.close()

    updates = [inbox.frames[0] for inbox in inboxes]
    assert all(len(inbox.frames) == 1 for inbox in inboxes)
    assert before and all(asked == 2 for asked in before)
    assert calls == [2]
    assert [frame.body["id"] for _, frame, _ in answers] == list(range(20))
    assert all(keep for _, _, keep in answers)
    for group in (updates[0::2], updates[1::2]):
        assert all(frame is group[0][1] for _, frame, _ in group)
    around, among = orjson.loads(updates[0][1].json()), orjson.loads(updates[1][1].json())
    assert _placed(around, x, y, z, w) == [(0, 2), (1, 3), (3, 4)]
    assert _placed(among, x, y, z, w) == [(2, 1, 1), (0, 2, 2)]
    assert updates[0][0] == ("best_run", "around") and updates[1][0] == ("best_run", "players")
