"""gRPC handlers of podium.auth.v1.AuthService: call the core, translate its errors."""

from dataclasses import dataclass

import grpc
from podium.auth.v1 import auth_service_pb2, auth_service_pb2_grpc

from auth import core
from auth.passwords import Passwords
from auth.sessions import Sessions
from auth.store import Accounts
from auth.tokens import Tokens
from infra.errors import guarded

SERVICE_NAME = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@dataclass(frozen=True)
class AuthDeps:
    """Everything the handlers hand to the core functions."""

    accounts: Accounts
    passwords: Passwords
    sessions: Sessions
    tokens: Tokens


class AuthApi(auth_service_pb2_grpc.AuthServiceServicer):
    """The AuthService servicer."""

    def __init__(self, deps: AuthDeps) -> None:
        self._deps = deps

    @guarded
    async def Register(self, request, context):
        deps = self._deps
        player_id = await core.register(
            request.username, request.password, deps.accounts, deps.passwords, deps.sessions
        )
        return auth_service_pb2.RegisterResponse(player_id=player_id)

    @guarded
    async def Login(self, request, context):
        deps = self._deps
        result = await core.login(
            request.username,
            request.password,
            deps.accounts,
            deps.passwords,
            deps.sessions,
            deps.tokens,
        )
        return auth_service_pb2.LoginResponse(
            access_token=result.access_token,
            refresh_token=result.refresh_token,
            expires_in_seconds=result.expires_in_seconds,
            player_id=result.player_id,
        )

    @guarded
    async def ValidateToken(self, request, context):
        claims = await core.validate_token(
            request.access_token, self._deps.tokens, self._deps.sessions
        )
        return auth_service_pb2.ValidateTokenResponse(
            player_id=claims.player_id,
            session_key=claims.session_key,
            username=claims.username,
            expires_at_unix=claims.expires_at,
        )


def add_to_server(server: grpc.aio.Server, deps: AuthDeps) -> list[str]:
    """Register the servicer; return its full name for health and reflection."""
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthApi(deps), server)
    return [SERVICE_NAME]
