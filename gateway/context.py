"""What every request handler of one gateway process shares."""

import weakref
from dataclasses import dataclass, field

from aiohttp import web

from gateway.clients import Clients
from gateway.config import GatewaySettings
from gateway.fanout import Fanout
from gateway.sessions import SessionSockets
from infra.names import Names


@dataclass
class Context:
    settings: GatewaySettings
    names: Names
    clients: Clients
    fanout: Fanout
    # Open sockets, so that shutdown can close each with "going away".
    sockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    # The same sockets by session, so that an ended session's sockets close at once.
    sessions: SessionSockets = field(default_factory=SessionSockets)


CONTEXT = web.AppKey("context", Context)
