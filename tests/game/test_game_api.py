"""GameService over gRPC: GetState, GetActionResult and the health service."""

import uuid

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from podium.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc

from game.state import state_hash
from infra.errors import from_rpc_error

INITIAL_STATE = {"total": 0, "plays": 0}


@pytest.fixture
async def channel(game_worker):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{game_worker.port}") as channel:
        yield channel


@pytest.fixture
def stub(channel):
    return game_service_pb2_grpc.GameServiceStub(channel)


async def test_unknown_player_gets_the_initial_state_and_nothing_is_stored(stub, shards):
    player = str(uuid.uuid4())
    pg = shards.for_player(player)

    reply = await stub.GetState(game_service_pb2.GetStateRequest(player_id=player), timeout=5)

    assert orjson.loads(reply.state_json) == INITIAL_STATE
    assert reply.state_hash == state_hash(INITIAL_STATE)
    assert reply.version == 0
    assert await pg.fetchval("SELECT count(*) FROM player_state WHERE player_id = $1", player) == 0


async def test_played_player_gets_the_stored_state(stub, client):
    player = str(uuid.uuid4())
    played = await client.play(
        client.action(player, state_hash(INITIAL_STATE), params={"points": 11})
    )

    reply = await stub.GetState(
        game_service_pb2.GetStateRequest(player_id=player.upper()), timeout=5
    )

    assert reply.state_json == played.state_json
    assert reply.state_hash == played.state_hash
    assert reply.version == 1
    assert orjson.loads(reply.state_json) == {"total": 11, "plays": 1}


@pytest.mark.parametrize("player_id", ["", "nope", "123", "0000-0000", "'; DROP TABLE x"])
async def test_get_state_refuses_a_player_id_that_is_not_a_uuid(stub, player_id):
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.GetState(game_service_pb2.GetStateRequest(player_id=player_id), timeout=5)

    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(failed.value).code == "INVALID_PLAYER_ID"


async def test_action_result_is_the_first_result_once_decided(stub, client):
    player = str(uuid.uuid4())
    action = client.action(player, state_hash(INITIAL_STATE), params={"points": 2})
    played = await client.play(action)

    reply = await stub.GetActionResult(
        game_service_pb2.GetActionResultRequest(player_id=player, action_id=action.action_id),
        timeout=5,
    )

    assert reply.found
    assert reply.result.SerializeToString() == played.SerializeToString()
    assert reply.result.status == game_pb2.ACTION_STATUS_APPLIED


async def test_action_result_of_an_undecided_action_is_not_found(stub):
    request = game_service_pb2.GetActionResultRequest(
        player_id=str(uuid.uuid4()), action_id=str(uuid.uuid4())
    )

    reply = await stub.GetActionResult(request, timeout=5)

    assert not reply.found
    assert not reply.HasField("result")


@pytest.mark.parametrize(
    ("player_id", "action_id", "code"),
    [
        ("nope", str(uuid.uuid4()), "INVALID_PLAYER_ID"),
        (str(uuid.uuid4()), "nope", "INVALID_ACTION_ID"),
        (str(uuid.uuid4()), "", "INVALID_ACTION_ID"),
    ],
)
async def test_action_result_refuses_ids_that_are_not_uuids(stub, player_id, action_id, code):
    request = game_service_pb2.GetActionResultRequest(player_id=player_id, action_id=action_id)

    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.GetActionResult(request, timeout=5)

    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(failed.value).code == code


@pytest.mark.parametrize("service", ["", "podium.game.v1.GameService"])
async def test_health_reports_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)

    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)

    assert reply.status == health_pb2.HealthCheckResponse.SERVING
