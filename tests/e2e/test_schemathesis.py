"""Schemathesis against a running stack: requests generated from gateway/openapi.yaml, valid
and invalid, each answered without a server error and exactly as the document says.

One test per operation, so that a report names the route. Every generated request runs and
every distinct failure is gathered before the test fails, with the curl command that shows it.
Random board ids name no board, so board reads are also fuzzed on real boards around a player
who has scores there: their 200 bodies are checked too, not only their errors.
"""

import asyncio
import collections
import uuid
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from devstack.client import PlayerClient
from gateway.api_docs import openapi_document

PASSWORD = "correct horse battery"
# Actions hardly refill here, so that a player's burst (40) runs out and the 429 is certain;
# the fuzzing sends fewer than that per player.
STACK_ENV = {"PODIUM_ACTION_RATE_PER_SECOND": "0.01"}
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
# The WebSocket upgrade is no REST call: a request without an upgrade only learns 426.
OPERATIONS = [
    result.ok() for result in SCHEMA.get_all_operations() if result.ok().path != "/v1/ws"
]
SEEDED_BOARDS = ("global", "daily", "best_run")
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
# Invalid input must be refused (4xx), never accepted or crash.
NEGATIVE_CHECKS = [*CHECKS, schemathesis.checks.negative_data_rejection]


def _settings(examples: int) -> settings:
    """Reproducible in CI, no shrinking (every failure is kept as found), no time limits:
    each example is a real request to a real stack."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@dataclass
class Outcome:
    """What one operation's requests got: distinct failures, and statuses by pass."""

    failures: dict[str, str] = field(default_factory=dict)
    statuses: collections.Counter = field(default_factory=collections.Counter)


def _label(operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _needs_bearer(operation) -> bool:
    return any(p.name == "Authorization" for p in operation.headers)


def _passes(operation, bearer: dict[str, str], player_id: str) -> list[tuple]:
    """(name, generation mode, fixed parts of the request, examples) of each pass.

    The token is fixed, not generated, so that invalid requests reach the checks behind
    authentication instead of all stopping at 401.
    """
    fixed = {"headers": bearer} if _needs_bearer(operation) else {}
    inputs = bool(operation.body) or any(
        p.name != "Authorization" for p in operation.iter_parameters()
    )
    passes = [("positive", schemathesis.GenerationMode.POSITIVE, fixed, 25)]
    if inputs:
        passes.append(("negative", schemathesis.GenerationMode.NEGATIVE, fixed, 25))

    names = {p.name for p in operation.path_parameters}
    if "board" in names:
        for board in SEEDED_BOARDS:
            path = {"board": board, "player_id": player_id}
            path = {name: value for name, value in path.items() if name in names}
            seeded = {**fixed, "path_parameters": path}
            if any(p.name == "ids" for p in operation.query):
                seeded["query"] = {"ids": [player_id]}
            passes.append((f"on {board}", schemathesis.GenerationMode.POSITIVE, seeded, 10))
    return passes


def _fuzz(operation, base_url: str, bearer: dict[str, str], player_id: str) -> Outcome:
    """Send every pass's generated requests and check each answer."""
    outcome = Outcome()
    with requests.Session() as session:
        for name, mode, fixed, examples in _passes(operation, bearer, player_id):
            checks = NEGATIVE_CHECKS if mode.is_negative else CHECKS
            send = _sender(session, base_url, fixed.get("headers"), checks, outcome, name)
            strategy = operation.as_strategy(generation_mode=mode, **fixed)
            given(case=strategy)(_settings(examples)(send))()
    return outcome


def _sender(session, base_url: str, headers, checks: list, outcome: Outcome, name: str):
    def send(case) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        outcome.statuses[(name, response.status_code)] += 1
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except schemathesis.errors.FailureGroup as group:
            for failure in group.exceptions:
                outcome.failures.setdefault(f"{name}: {failure.title}", str(group))

    return send


def _call_and_check(operation, base_url: str, body: dict, headers: dict | None = None) -> int:
    """Send one request made by hand and check its answer like a generated one's."""
    case = operation.Case(body=body, headers=headers, media_type="application/json")
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response.status_code


@pytest.fixture
async def bearer(players) -> dict[str, str]:
    """A fresh player's token for each operation, since fuzzing logout ends the session."""
    player = await players(connect=False)
    return player.bearer


@pytest.fixture(scope="module")
async def ranked_player(stack) -> str:
    """A player with scores on global, daily, weekly and best_run, once ranking has them."""
    async with aiohttp.ClientSession() as http:
        player = PlayerClient(http, stack.url)
        username = "st" + uuid.uuid4().hex[:12]
        await player.register(username, PASSWORD)
        await player.login(username, PASSWORD)
        await player.connect()
        try:
            await player.play("score", {"points": 250})
            await player.play("run", {"score": 4200, "combo": 12, "tag": "no-hit"})
        finally:
            await player.close()
        for board in SEEDED_BOARDS:
            await _ranked(http, f"{stack.url}/v1/boards/{board}/players/{player.player_id}")
    return player.player_id


async def _ranked(http: aiohttp.ClientSession, url: str) -> None:
    """Wait until ranking has applied the player's score (board writes are asynchronous)."""
    for _ in range(100):
        async with http.get(url) as reply:
            if reply.status == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never ranked: {url}")


async def test_the_stack_serves_this_document(stack, http):
    async with http.get(stack.url + "/v1/openapi.json") as reply:
        assert reply.status == 200
        assert reply.content_type == "application/json"
        served = orjson.loads(await reply.read())
    assert served == openapi_document()


@pytest.mark.parametrize("operation", OPERATIONS, ids=_label)
async def test_operation_conforms(stack, bearer, ranked_player, operation):
    outcome = await asyncio.to_thread(_fuzz, operation, stack.url, bearer, ranked_player)

    assert not outcome.failures, f"{_label(operation)}:\n\n" + "\n\n".join(
        outcome.failures.values()
    )
    # On real boards, every read finds the player: its 200 bodies were checked.
    for board in SEEDED_BOARDS if "{board}" in operation.path else ():
        assert outcome.statuses[(f"on {board}", 200)] > 0, outcome.statuses


async def test_a_login_lockout_conforms(stack):
    """The 429 (and its Retry-After) that random logins never reach."""
    login = SCHEMA["/v1/auth/login"]["POST"]
    body = {"username": "st" + uuid.uuid4().hex[:12], "password": "not the password"}

    statuses = [
        await asyncio.to_thread(_call_and_check, login, stack.url, body) for _ in range(11)
    ]

    assert statuses == [401] * 10 + [429]


async def test_an_action_rate_limit_conforms(stack, bearer):
    """A player who spent the burst is told to wait, as the document says."""
    actions = SCHEMA["/v1/actions"]["POST"]
    statuses = []
    for _ in range(41):
        body = {"action_id": str(uuid.uuid4()), "action": "score", "state_hash": "stale"}
        statuses.append(await asyncio.to_thread(_call_and_check, actions, stack.url, body, bearer))

    assert statuses == [200] * 40 + [429]
