"""The gateway's connections: gRPC stubs for auth, game and ranking, and NATS.

Every call carries a deadline, since gRPC has none by default, and every failure comes back as
a PodiumError, so handlers never see a raw RpcError.
"""

import asyncio
import json
from dataclasses import dataclass

import grpc
import nats
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from podium.auth.v1 import auth_service_pb2 as auth_pb
from podium.auth.v1 import auth_service_pb2_grpc as auth_grpc
from podium.game.v1 import game_service_pb2 as game_pb
from podium.game.v1 import game_service_pb2_grpc as game_grpc
from podium.ranking.v1 import ranking_service_pb2 as ranking_pb
from podium.ranking.v1 import ranking_service_pb2_grpc as ranking_grpc

from gateway.config import GatewaySettings
from gateway.views import ViewSpec
from infra.errors import from_rpc_error
from infra.grpc_server import keepalive_options
from infra.names import Names

# A call in flight on a replica that goes away fails UNAVAILABLE, though the others serve; calls
# that change nothing are tried again at once, on the next replica. Login, registration,
# refresh and tickets are not: a repeat of one that did arrive would not be the same call.
_RETRIED = [
    *(
        {"service": auth_pb.DESCRIPTOR.services_by_name["AuthService"].full_name, "method": m}
        for m in ("ValidateToken", "EndedSessions")
    ),
    {"service": game_pb.DESCRIPTOR.services_by_name["GameService"].full_name},
    {"service": ranking_pb.DESCRIPTOR.services_by_name["RankingService"].full_name},
    {"service": health.SERVICE_NAME},
]
_RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
# A target may list several replicas ("ipv4:127.0.0.1:50052,127.0.0.1:50062"): calls are
# spread over those that are up.
_BALANCING = [
    ("grpc.lb_policy_name", "round_robin"),
    (
        "grpc.service_config",
        json.dumps({"methodConfig": [{"name": _RETRIED, "retryPolicy": _RETRY_POLICY}]}),
    ),
]


@dataclass
class Clients:
    """Open connections, built once per process by `connect` and closed by `close`."""

    settings: GatewaySettings
    channels: dict[str, grpc.aio.Channel]
    nc: NATS
    js: JetStreamContext

    @property
    def timeout(self) -> float:
        return self.settings.rpc_timeout_ms / 1000

    async def _call(self, method, request, timeout: float | None = None):
        try:
            return await method(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def register(
        self, username: str, password: str, client_address: str
    ) -> auth_pb.RegisterResponse:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        request = auth_pb.RegisterRequest(
            username=username, password=password, client_address=client_address
        )
        return await self._call(stub.Register, request)

    async def login(
        self, username: str, password: str, client_address: str
    ) -> auth_pb.LoginResponse:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        request = auth_pb.LoginRequest(
            username=username, password=password, client_address=client_address
        )
        return await self._call(stub.Login, request)

    async def refresh(self, refresh_token: str) -> auth_pb.RefreshResponse:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        request = auth_pb.RefreshRequest(refresh_token=refresh_token)
        return await self._call(stub.Refresh, request)

    async def logout(self, access_token: str) -> None:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        await self._call(stub.Logout, auth_pb.LogoutRequest(access_token=access_token))

    async def ended_sessions(self, session_keys: list[str]) -> list[str]:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        request = auth_pb.EndedSessionsRequest(session_keys=session_keys)
        return list((await self._call(stub.EndedSessions, request)).session_keys)

    async def validate_token(self, token: str) -> auth_pb.ValidateTokenResponse:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        request = auth_pb.ValidateTokenRequest(access_token=token)
        return await self._call(stub.ValidateToken, request)

    async def issue_ticket(self, token: str) -> auth_pb.IssueTicketResponse:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        request = auth_pb.IssueTicketRequest(access_token=token)
        return await self._call(stub.IssueTicket, request)

    async def redeem_ticket(self, ticket: str) -> auth_pb.RedeemTicketResponse:
        stub = auth_grpc.AuthServiceStub(self.channels["auth"])
        return await self._call(stub.RedeemTicket, auth_pb.RedeemTicketRequest(ticket=ticket))

    async def get_state(self, player_id: str) -> game_pb.GetStateResponse:
        stub = game_grpc.GameServiceStub(self.channels["game"])
        return await self._call(stub.GetState, game_pb.GetStateRequest(player_id=player_id))

    async def get_action_result(
        self, player_id: str, action_id: str
    ) -> game_pb.GetActionResultResponse:
        stub = game_grpc.GameServiceStub(self.channels["game"])
        request = game_pb.GetActionResultRequest(player_id=player_id, action_id=action_id)
        return await self._call(stub.GetActionResult, request)

    async def get_top(
        self, board: str, period: str, limit: int, cursor: str = "", pin: bool = False
    ) -> ranking_pb.GetTopResponse:
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        request = ranking_pb.GetTopRequest(
            board=board, period=period, limit=limit, cursor=cursor, pin=pin
        )
        return await self._call(stub.GetTop, request)

    async def get_around(
        self, board: str, period: str, player_id: str, radius: int, rows: int = 0
    ) -> ranking_pb.GetAroundResponse:
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        request = ranking_pb.GetAroundRequest(
            board=board, period=period, player_id=player_id, radius=radius, rows=rows
        )
        return await self._call(stub.GetAround, request)

    async def get_player_rank(
        self, board: str, period: str, player_id: str
    ) -> ranking_pb.GetPlayerRankResponse:
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        request = ranking_pb.GetPlayerRankRequest(board=board, period=period, player_id=player_id)
        return await self._call(stub.GetPlayerRank, request)

    async def get_players(
        self, board: str, period: str, player_ids: list[str]
    ) -> ranking_pb.GetPlayersResponse:
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        request = ranking_pb.GetPlayersRequest(board=board, period=period, player_ids=player_ids)
        return await self._call(stub.GetPlayers, request)

    async def list_periods(self, board: str, limit: int) -> ranking_pb.ListPeriodsResponse:
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        request = ranking_pb.ListPeriodsRequest(board=board, limit=limit)
        return await self._call(stub.ListPeriods, request)

    async def get_views(self, board: str, specs: list[ViewSpec]) -> ranking_pb.GetViewsResponse:
        """Around and players views of a board's current period, all read at one version."""
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        request = ranking_pb.GetViewsRequest(board=board, views=[_view(spec) for spec in specs])
        return await self._call(stub.GetViews, request)

    def watch_board(self, board: str, limit: int):
        """Open the server stream of a board's top view (no deadline: it is meant to last)."""
        stub = ranking_grpc.RankingServiceStub(self.channels["ranking"])
        return stub.WatchBoard(ranking_pb.WatchBoardRequest(board=board, limit=limit))

    @property
    def dependencies(self) -> list[str]:
        """Names of what the gateway needs: its services, NATS, and the actions stream."""
        return [*self.channels, "nats", "jetstream"]

    async def unhealthy(self) -> list[str]:
        """Names of the dependencies that are not serving right now (the actions stream is
        out of reach, hence down, while NATS is). Asked all at once, so that hung services
        cost one timeout, within a readiness probe's, not one each."""
        names = list(self.channels)
        serving = await asyncio.gather(*(self._serving(name) for name in names))
        down = [name for name, up in zip(names, serving, strict=True) if not up]
        if not self.nc.is_connected:
            down += ["nats", "jetstream"]
        elif not await self._actions_stream_exists():
            down.append("jetstream")
        return down

    async def _actions_stream_exists(self) -> bool:
        """Without the stream every action is refused, though NATS itself answers."""
        try:
            await self.js.stream_info(Names(self.settings.namespace).actions_stream)
        except (NatsError, TimeoutError):
            return False
        return True

    async def _serving(self, name: str) -> bool:
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        if not self.nc.is_closed:
            await self.nc.drain()


def _view(spec: ViewSpec) -> ranking_pb.View:
    if spec.view == "around":
        around = ranking_pb.AroundView(
            player_id=spec.player_id, radius=spec.radius, rows=spec.rows
        )
        return ranking_pb.View(around=around)
    return ranking_pb.View(players=ranking_pb.PlayersView(player_ids=spec.players))


async def connect(settings: GatewaySettings) -> Clients:
    """Open the channels (lazily connecting) and the NATS connection."""
    targets = {
        "auth": settings.auth_target,
        "game": settings.game_target,
        "ranking": settings.ranking_target,
    }
    options = [*keepalive_options(settings.grpc_keepalive_ms), *_BALANCING]
    channels = {
        name: grpc.aio.insecure_channel(target, options=options)
        for name, target in targets.items()
    }
    nc = await nats.connect(settings.nats_url, name="podium-gateway", max_reconnect_attempts=-1)
    return Clients(settings, channels, nc, nc.jetstream())
