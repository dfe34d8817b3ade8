"""Scale-out on one machine, started as the README says: 2 gateways, 3 game workers, 2 ranking
and 2 auth replicas, each a process of its own, over 2 shard databases.

Players spread over both gateways (and both databases) see each other's scores live, and each
result comes back on the socket that sent its action. Then one replica of every service is
killed (SIGKILL), and once all are back, the other replica of every service is stopped
(SIGTERM), while the players keep playing as a real client does: after a dropped socket it
connects again, to the next gateway, and sends its unanswered action again with the same
action_id. Nothing may be lost: every action gets exactly one result, the databases hold
exactly the actions sent, and every player's board converges to them.

The first kills move every player to the first gateway, and its board stream runs to one of
the two ranking replicas, each stopped in turn before that gateway is: so the stream is cut
under the players' feet at least once, whichever replica it went to.
"""

import asyncio
import itertools
import signal
import uuid
from dataclasses import dataclass, field

import aiohttp
import pytest

from devstack.client import PlayerClient
from infra.shards import database_of, shard_of_username

STACK_ENV = {
    "PODIUM_GATEWAYS": "2",
    "PODIUM_GAME_WORKERS": "3",
    "PODIUM_RANKING_REPLICAS": "2",
    "PODIUM_AUTH_REPLICAS": "2",
    # The databases are named after PODIUM_POSTGRES_DSN's, as the README's command does it.
    "PODIUM_POSTGRES_SHARDS": "",
    "PODIUM_SHARD_DATABASES": "2",
}
SHARD_DATABASES = 2
PLAYERS_PER_GATEWAY = 4
BOARD = "global"
SUBSCRIBE = {"type": "subscribe", "id": "board", "board": BOARD, "view": "top", "limit": 100}
# Waits on conditions, generous for two cores shared with the stack's ten processes: a
# killed worker's partitions alone stand still for a lease time (6 s).
WAIT_SECONDS = 30.0
# Actions each player completes between the steps of the faults, so that each meets traffic.
ACTIONS_PER_STEP = 5
# Refusals that ask for the same action to be sent again.
RESEND_CODES = {"ACTION_NOT_ACCEPTED", "ACTION_RATE_LIMITED"}
SERVICES = ("gateway", "auth", "ranking", "game")


@dataclass
class Player:
    """A client and what it sent: action id -> points, and each action's one result."""

    client: PlayerClient
    gateway: int
    sent: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    reconnects: int = 0


def _usernames(count: int) -> list[str]:
    """Names whose accounts alternate between the shard databases."""
    wanted = count // SHARD_DATABASES
    names: list[list[str]] = [[] for _ in range(SHARD_DATABASES)]
    while any(len(each) < wanted for each in names):
        name = "s" + uuid.uuid4().hex[:12]
        database = names[database_of(shard_of_username(name), SHARD_DATABASES)]
        if len(database) < wanted:
            database.append(name)
    return [name for group in zip(*names, strict=True) for name in group]


def _scores(frame: dict) -> dict[str, int]:
    return {entry["player_id"]: entry["score"] for entry in frame["entries"]}


async def _reconnect(player: Player, urls: list[str], deadline: float) -> None:
    """Connect again to the next gateway (the last one may be gone) and follow the board."""
    loop = asyncio.get_running_loop()
    while True:
        player.gateway = (player.gateway + 1) % len(urls)
        player.client.base_url = urls[player.gateway]
        try:
            await player.client.connect()
            await player.client.send(SUBSCRIBE)
            player.reconnects += 1
            return
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _play(player: Player, urls: list[str], points: int) -> dict:
    """One action, sent until its result comes back, as a client that outlives gateways does."""
    client = player.client
    action_id = str(uuid.uuid4())
    frame = {
        "type": "action",
        "id": action_id,
        "action_id": action_id,
        "action": "score",
        "params": {"points": points},
        "state_hash": client.state_hash,
    }
    player.sent[action_id] = points
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while loop.time() < deadline:
        if not client.open:
            await _reconnect(player, urls, deadline)
        try:
            await client.send(frame)
            answer = await client.answer_unless_closed(action_id, deadline - loop.time())
        except (aiohttp.ClientError, ConnectionError):
            # The socket broke under the send; its reader notices in a moment.
            await asyncio.sleep(0.05)
            continue
        except TimeoutError:
            break
        if answer is None:
            continue
        if answer["type"] == "result":
            player.results[action_id] = answer
            return answer
        assert answer["error"]["code"] in RESEND_CODES, answer
        await asyncio.sleep(answer["error"].get("retry_after_ms", 100) / 1000)
    raise AssertionError(f"no result for action {action_id} within {WAIT_SECONDS} s")


async def _keep_playing(player: Player, urls: list[str], stop: asyncio.Event) -> None:
    for points in itertools.cycle(range(1, 10)):
        if stop.is_set():
            return
        await _play(player, urls, points)
        # A player's pace, well under its 20 actions a second.
        await asyncio.sleep(0.1)


async def _after_more_actions(
    players: list[Player], playing: list[asyncio.Task], more: int
) -> None:
    """Wait until every player has had `more` further results; a player that failed fails."""
    targets = [len(player.results) + more for player in players]
    async with asyncio.timeout(WAIT_SECONDS):
        while any(len(p.results) < target for p, target in zip(players, targets, strict=True)):
            for task in playing:
                if task.done():
                    task.result()
            await asyncio.sleep(0.05)


async def _stop_replicas(stack, modules, replica: int, sig: signal.Signals) -> None:
    """Stop one replica of each service at once and wait until devstack has them back."""
    await asyncio.gather(*(stack.restart(module, replica, sig) for module in modules))


async def _board_until(player: Player, shows, what: str) -> None:
    """Wait for a board frame of the player's for which `shows(frame)` holds."""
    try:
        await player.client.board("top", shows, WAIT_SECONDS)
    except TimeoutError:
        raise AssertionError(f"{player.client.username}'s board never showed {what}") from None


async def _stored(databases, player: Player) -> tuple[int, int, dict[str, str]]:
    """Board score, state version and decided action ids of a player, from its database."""
    pool = databases.for_player(player.client.player_id)
    score = await pool.fetchval(
        "SELECT score FROM board_scores WHERE player_id = $1 AND board = $2 AND period = 'all'",
        player.client.player_id,
        BOARD,
    )
    version = await pool.fetchval(
        "SELECT version FROM player_state WHERE player_id = $1", player.client.player_id
    )
    rows = await pool.fetch(
        "SELECT action_id::text, status FROM applied_actions WHERE player_id = $1",
        player.client.player_id,
    )
    return score, version, {row["action_id"]: row["status"] for row in rows}


@pytest.mark.timeout(180)
async def test_players_over_two_gateways_lose_nothing_while_replicas_stop(
    stack, players, databases
):
    urls = stack.urls
    count = PLAYERS_PER_GATEWAY * len(urls)
    made = await asyncio.gather(
        *(
            players(url=urls[i // PLAYERS_PER_GATEWAY], username=name)
            for i, name in enumerate(_usernames(count))
        )
    )
    everyone = [Player(client, i // PLAYERS_PER_GATEWAY) for i, client in enumerate(made)]
    for player in everyone:
        await player.client.send(SUBSCRIBE)
    sides = [everyone[:PLAYERS_PER_GATEWAY], everyone[PLAYERS_PER_GATEWAY:]]

    # Live across gateways: a score played on one shows on the boards of the other's players.
    for playing, watching in (sides, sides[::-1]):
        for player in playing:
            result = await _play(player, urls, 100)
            for watcher in watching:
                await _board_until(
                    watcher,
                    lambda frame, p=player, r=result: (
                        _scores(frame).get(p.client.player_id) == r["score"]
                    ),
                    f"{player.client.username} at {result['score']}",
                )

    stop = asyncio.Event()
    playing = [asyncio.create_task(_keep_playing(p, urls, stop)) for p in everyone]
    try:
        for modules, replica, sig in (
            (SERVICES, 1, signal.SIGKILL),
            (("auth", "ranking", "game"), 0, signal.SIGTERM),
            (("gateway",), 0, signal.SIGTERM),
        ):
            await _after_more_actions(everyone, playing, ACTIONS_PER_STEP)
            await _stop_replicas(stack, modules, replica, sig)
        await _after_more_actions(everyone, playing, ACTIONS_PER_STEP)
    finally:
        stop.set()
        await asyncio.gather(*playing)

    stored = {p.client.player_id: await _stored(databases, p) for p in everyone}
    scores = {player_id: score for player_id, (score, _, _) in stored.items()}
    for player in everyone:
        if not player.client.open:
            await _reconnect(player, urls, asyncio.get_running_loop().time() + WAIT_SECONDS)
    for player in everyone:
        await _board_until(player, lambda frame: _scores(frame) == scores, "the stored scores")

    for player in everyone:
        score, version, decided = stored[player.client.player_id]
        assert player.results.keys() == player.sent.keys()
        assert {result["status"] for result in player.results.values()} == {"applied"}
        assert list(player.results.values())[-1]["score"] == score == sum(player.sent.values())
        assert decided == dict.fromkeys(player.sent, "applied")
        assert version == len(player.sent)
        # No second answer to any action, nor one to an action this player never sent.
        assert [f for f in player.client.frames if f["type"] in ("result", "error")] == []
    # The faults did move players between gateways and cut a board stream they were following,
    # and both databases are in use.
    assert sum(p.reconnects for p in everyone) >= count + PLAYERS_PER_GATEWAY
    assert stack.entries("board_stream_failed") + stack.entries("board_stream_ended")
    assert {databases.for_player(p.client.player_id) for p in everyone} == set(databases)
