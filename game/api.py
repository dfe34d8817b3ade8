"""podium.game.v1.GameService over gRPC: check the request, call the core, map errors."""

import grpc
from podium.game.v1 import game_service_pb2, game_service_pb2_grpc

from game.apply import recorded_result
from game.rules.base import Ruleset
from game.state import current_state
from infra.errors import PodiumError, guarded
from infra.ids import canonical_uuid
from infra.shards import ShardPools

SERVICE_NAME = game_service_pb2.DESCRIPTOR.services_by_name["GameService"].full_name


class GameApi(game_service_pb2_grpc.GameServiceServicer):
    """Answers questions from Postgres; actions themselves arrive on JetStream, not here."""

    def __init__(self, pools: ShardPools, ruleset: Ruleset) -> None:
        self._pools = pools
        self._ruleset = ruleset

    @guarded
    async def GetState(
        self, request: game_service_pb2.GetStateRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetStateResponse:
        player_id = _uuid(request.player_id, "player_id")

        state = await current_state(self._pools.for_player(player_id), self._ruleset, player_id)
        return game_service_pb2.GetStateResponse(
            state_json=state.json, state_hash=state.hash, version=state.version
        )

    @guarded
    async def GetActionResult(
        self, request: game_service_pb2.GetActionResultRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetActionResultResponse:
        player_id = _uuid(request.player_id, "player_id")
        action_key = _uuid(request.action_id, "action_id")

        result = await recorded_result(self._pools.for_player(player_id), player_id, action_key)
        if result is None:
            return game_service_pb2.GetActionResultResponse(found=False)
        return game_service_pb2.GetActionResultResponse(found=True, result=result)


def add_game_service(server: grpc.aio.Server, api: GameApi) -> list[str]:
    """Register the servicer; returns the names start_server publishes in health/reflection."""
    game_service_pb2_grpc.add_GameServiceServicer_to_server(api, server)
    return [SERVICE_NAME]


def _uuid(text: str, field: str) -> str:
    """The canonical form of a UUID field, or INVALID_<FIELD>."""
    try:
        return canonical_uuid(text)
    except ValueError:
        raise PodiumError(f"INVALID_{field.upper()}", f"{field} must be a UUID") from None
