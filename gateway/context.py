"""What every request handler of one gateway process shares."""

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.clients import Clients
from gateway.config import GatewaySettings
from gateway.fanout import Fanout
from gateway.rates import ActionRates
from gateway.sessions import SessionSockets
from gateway.top_cache import TopCache
from infra.names import Names


@dataclass
class Context:
    settings: GatewaySettings
    names: Names
    clients: Clients
    fanout: Fanout
    action_rates: ActionRates
    top_cache: TopCache
    # Open sockets (gateway.ws.PlayerSocket), so that a drain can close each with "going away".
    players: set[Any] = field(default_factory=set)
    # Set on SIGTERM: readiness turns false and new sockets are refused.
    draining: bool = False
    # The same sockets by session, so that an ended session's sockets close at once.
    sessions: SessionSockets = field(default_factory=SessionSockets)


CONTEXT = web.AppKey("context", Context)
