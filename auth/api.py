"""gRPC handlers of podium.auth.v1.AuthService: call the core, translate its errors."""

import grpc
from podium.auth.v1 import auth_service_pb2 as pb
from podium.auth.v1 import auth_service_pb2_grpc

from auth import core, revocation
from auth.core import Deps
from auth.tickets import TICKET_TTL_SECONDS, Tickets, issue_ticket, redeem_ticket
from infra.errors import guarded

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AuthService"].full_name


class AuthApi(auth_service_pb2_grpc.AuthServiceServicer):
    """The AuthService servicer."""

    def __init__(self, deps: Deps, tickets: Tickets) -> None:
        self._deps = deps
        self._tickets = tickets

    @guarded
    async def Register(self, request, context):
        player_id = await core.register(
            self._deps, request.username, request.password, request.client_address
        )
        return pb.RegisterResponse(player_id=player_id)

    @guarded
    async def Login(self, request, context):
        tokens = await core.login(
            self._deps, request.username, request.password, request.client_address
        )
        return pb.LoginResponse(**_tokens_fields(tokens))

    @guarded
    async def Refresh(self, request, context):
        tokens = await core.refresh(self._deps, request.refresh_token)
        return pb.RefreshResponse(**_tokens_fields(tokens))

    @guarded
    async def ValidateToken(self, request, context):
        claims = await core.validate_token(self._deps, request.access_token)
        return pb.ValidateTokenResponse(
            player_id=claims.player_id,
            session_key=claims.session_key,
            username=claims.username,
            expires_at_unix=claims.expires_at,
        )

    @guarded
    async def Logout(self, request, context):
        await revocation.logout(self._deps, request.access_token)
        return pb.LogoutResponse()

    @guarded
    async def BanPlayer(self, request, context):
        ended = await revocation.ban(self._deps, request.player_id)
        return pb.BanPlayerResponse(sessions_ended=ended)

    @guarded
    async def UnbanPlayer(self, request, context):
        await revocation.unban(self._deps, request.player_id)
        return pb.UnbanPlayerResponse()

    @guarded
    async def EndedSessions(self, request, context):
        ended = await revocation.ended_sessions(self._deps, list(request.session_keys))
        return pb.EndedSessionsResponse(session_keys=ended)

    @guarded
    async def IssueTicket(self, request, context):
        ticket = await issue_ticket(self._deps, self._tickets, request.access_token)
        return pb.IssueTicketResponse(ticket=ticket, expires_in_seconds=TICKET_TTL_SECONDS)

    @guarded
    async def RedeemTicket(self, request, context):
        holder = await redeem_ticket(self._deps, self._tickets, request.ticket)
        return pb.RedeemTicketResponse(
            player_id=holder.player_id, session_key=holder.session_key, username=holder.username
        )


def _tokens_fields(tokens: core.SessionTokens) -> dict:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in_seconds": tokens.expires_in_seconds,
        "player_id": tokens.player_id,
    }


def add_to_server(server: grpc.aio.Server, deps: Deps, tickets: Tickets) -> list[str]:
    """Register the servicer; return its full name for health and reflection."""
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthApi(deps, tickets), server)
    return [SERVICE_NAME]
