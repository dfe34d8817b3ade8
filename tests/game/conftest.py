"""Game worker fixtures: a worker on a namespace of the game tests' own, and gateway-like clients.

Tests talk to the worker only as the other services do: Action messages on JetStream, results
and board changes on core NATS, state through gRPC, and the rows and keys it leaves behind.
The namespace keeps the stream, consumer and Redis keys apart from other suites that share the
session's database and NATS, so no other test's actions reach this worker.
"""

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from nats.js.api import PubAck
from podium.game.v1 import game_pb2

from game.config import GameSettings
from game.worker import running
from infra.names import Names

WAIT_SECONDS = 15.0
# Short leases, so that a stopped or killed worker's partitions move on within seconds.
LEASE_SECONDS = 1.5


def _worker_settings(**overrides: Any) -> GameSettings:
    """Settings from the session's PODIUM_* env, on a free port, quick to notice a stop."""
    values = {
        "game_listen": "127.0.0.1:0",
        "fetch_timeout_ms": 200,
        "lease_seconds": LEASE_SECONDS,
        **overrides,
    }
    return GameSettings(**values)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Inbox:
    """Collects the protobuf messages published on one core NATS subject."""

    def __init__(self, nc, subject: str, message_type: type) -> None:
        self._nc = nc
        self._subject = subject
        self._type = message_type
        self._queue: asyncio.Queue = asyncio.Queue()
        self._sub = None

    async def open(self) -> "Inbox":
        self._sub = await self._nc.subscribe(self._subject, cb=self._receive)
        await self._nc.flush()
        return self

    async def close(self) -> None:
        await self._sub.unsubscribe()

    async def next(self) -> Any:
        return await asyncio.wait_for(self._queue.get(), WAIT_SECONDS)

    async def _receive(self, msg) -> None:
        await self._queue.put(self._type.FromString(msg.data))


class GameClient:
    """Publishes actions for one session, as the gateway does, and reads that session's results."""

    def __init__(self, nc, names: Names) -> None:
        self.names = names
        self.session_key = secrets.token_hex(16)
        self._js = nc.jetstream()
        self._results = Inbox(nc, names.result_subject(self.session_key), game_pb2.ActionResult)

    async def open(self) -> "GameClient":
        await self._results.open()
        return self

    async def close(self) -> None:
        await self._results.close()

    def action(
        self,
        player_id: str,
        state_hash: str,
        *,
        name: str = "score",
        params: dict | None = None,
        params_json: str | None = None,
        action_id: str | None = None,
        received_ts_ms: int | None = None,
    ) -> game_pb2.Action:
        if params_json is None:
            params_json = orjson.dumps({"points": 5} if params is None else params).decode()
        return game_pb2.Action(
            action_id=action_id or str(uuid.uuid4()),
            player_id=player_id,
            session_key=self.session_key,
            name=name,
            params_json=params_json,
            state_hash=state_hash,
            client_ts_ms=_now_ms(),
            received_ts_ms=received_ts_ms or _now_ms(),
        )

    async def send(self, action: game_pb2.Action, msg_id: str | None = None) -> PubAck:
        """Publish like the gateway; a msg_id other than the default gets past JetStream dedup."""
        return await self.send_bytes(
            action.player_id,
            action.SerializeToString(),
            msg_id or self.names.action_msg_id(action.player_id, action.action_id),
        )

    async def send_bytes(self, player_id: str, data: bytes, msg_id: str) -> PubAck:
        return await self._js.publish(
            self.names.action_subject(player_id), data, headers={"Nats-Msg-Id": msg_id}
        )

    async def result(self) -> game_pb2.ActionResult:
        return await self._results.next()

    async def play(self, action: game_pb2.Action) -> game_pb2.ActionResult:
        await self.send(action)
        return await self.result()


async def remove_namespace(nats_client, redis_client, names: Names) -> None:
    """Delete a namespace's streams (their consumers go with them) and its Redis keys."""
    js = nats_client.jetstream()
    streams = {s.config.name for s in await js.streams_info()}
    for stream in (names.actions_stream, names.dead_letters_stream):
        if stream in streams:
            await js.delete_stream(stream)
    keys = [key async for key in redis_client.scan_iter(match=f"{names.namespace}:*")]
    if keys:
        await redis_client.delete(*keys)


def _fresh_names() -> Names:
    return Names("g" + uuid.uuid4().hex[:10])


@pytest.fixture(scope="session")
async def game_names(settings_env, nats_client, redis_client):
    names = _fresh_names()
    yield names
    await remove_namespace(nats_client, redis_client, names)


@pytest.fixture(scope="session")
async def game_worker(game_names, shards):
    """The worker every test here talks to, stopped before the shared clients close."""
    async with running(_worker_settings(namespace=game_names.namespace)) as worker:
        yield worker

        assert not worker.task.done(), "the action consumer stopped during the session"


@pytest.fixture
def worker_settings(settings_env) -> Callable[..., GameSettings]:
    """Build GameSettings for a worker of a test's own (a spare namespace, say)."""
    return _worker_settings


@pytest.fixture
async def make_client(nats_client):
    """Open GameClients on any namespace; they are closed after the test."""
    opened = []

    async def make(names: Names) -> GameClient:
        game_client = await GameClient(nats_client, names).open()
        opened.append(game_client)
        return game_client

    yield make
    for game_client in opened:
        await game_client.close()


@pytest.fixture
async def client(game_worker, make_client, game_names) -> GameClient:
    return await make_client(game_names)


@pytest.fixture
async def board_changes(game_worker, nats_client, game_names):
    subject = game_names.board_changes_subject
    inbox = await Inbox(nats_client, subject, game_pb2.BoardChange).open()
    yield inbox
    await inbox.close()


@pytest.fixture
def dead_letters(nats_client):
    """Read every message in a namespace's dead-letter stream, oldest first."""
    js = nats_client.jetstream()

    async def read(names: Names) -> list:
        state = (await js.stream_info(names.dead_letters_stream)).state
        if not state.messages:
            return []
        seqs = range(state.first_seq, state.last_seq + 1)
        return [await js.get_msg(names.dead_letters_stream, seq) for seq in seqs]

    return read


@pytest.fixture
async def spare_names(settings_env, nats_client, redis_client):
    """Another namespace (same database), for a worker this one test configures and starts."""
    names = _fresh_names()
    yield names
    await remove_namespace(nats_client, redis_client, names)
