"""podium.game.v1.GameService over gRPC: check the request, call the core, map errors."""

import asyncpg
import grpc
import structlog
from podium.game.v1 import game_service_pb2, game_service_pb2_grpc

from game.apply import canonical_uuid, recorded_result
from game.rules.base import Ruleset
from game.state import current_state
from infra.errors import PodiumError, abort

log = structlog.get_logger(__name__)

SERVICE_NAME = game_service_pb2.DESCRIPTOR.services_by_name["GameService"].full_name

_INTERNAL = PodiumError("INTERNAL", "internal error", grpc.StatusCode.INTERNAL)


class GameApi(game_service_pb2_grpc.GameServiceServicer):
    """Answers questions from Postgres; actions themselves arrive on JetStream, not here."""

    def __init__(self, pool: asyncpg.Pool, ruleset: Ruleset) -> None:
        self._pool = pool
        self._ruleset = ruleset

    async def GetState(
        self, request: game_service_pb2.GetStateRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetStateResponse:
        player_id = await _uuid_or_abort(context, request.player_id, "player_id")

        try:
            state = await current_state(self._pool, self._ruleset, player_id)
        except Exception:
            log.exception("get_state_failed", player_id=player_id)
            await abort(context, _INTERNAL)

        return game_service_pb2.GetStateResponse(
            state_json=state.json, state_hash=state.hash, version=state.version
        )

    async def GetActionResult(
        self, request: game_service_pb2.GetActionResultRequest, context: grpc.aio.ServicerContext
    ) -> game_service_pb2.GetActionResultResponse:
        player_id = await _uuid_or_abort(context, request.player_id, "player_id")
        action_key = await _uuid_or_abort(context, request.action_id, "action_id")

        try:
            result = await recorded_result(self._pool, player_id, action_key)
        except Exception:
            log.exception("get_action_result_failed", player_id=player_id)
            await abort(context, _INTERNAL)

        if result is None:
            return game_service_pb2.GetActionResultResponse(found=False)
        return game_service_pb2.GetActionResultResponse(found=True, result=result)


def add_game_service(server: grpc.aio.Server, api: GameApi) -> list[str]:
    """Register the servicer; returns the names start_server publishes in health/reflection."""
    game_service_pb2_grpc.add_GameServiceServicer_to_server(api, server)
    return [SERVICE_NAME]


async def _uuid_or_abort(context: grpc.aio.ServicerContext, text: str, field: str) -> str:
    """The canonical form of a UUID field, or end the call with INVALID_<FIELD>."""
    try:
        return canonical_uuid(text)
    except ValueError:
        await abort(context, PodiumError(f"INVALID_{field.upper()}", f"{field} must be a UUID"))
