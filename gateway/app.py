"""The gateway's aiohttp application: routes, and the connections it opens and closes."""

import asyncio

import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway import action_routes, api_docs, board_routes, metrics, page, rest, ws
from gateway.clients import connect
from gateway.config import GatewaySettings
from gateway.context import CONTEXT, Context
from gateway.fanout import Fanout
from gateway.rates import ActionRates
from gateway.sessions import follow_ended_sessions, sweep_ended_sessions
from gateway.top_cache import TopCache
from infra.names import Names
from infra.streams import ensure_actions_stream

log = structlog.get_logger(__name__)

# Request bodies are small JSON documents; anything bigger is refused with 413.
MAX_BODY_BYTES = 64 * 1024


def build_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(
        middlewares=[metrics.count_requests, rest.errors_as_json], client_max_size=MAX_BODY_BYTES
    )
    app.cleanup_ctx.append(_connections(settings))
    app.on_shutdown.append(_close_sockets)
    app.add_routes(
        [
            web.post("/v1/auth/register", rest.register),
            web.post("/v1/auth/login", rest.login),
            web.post("/v1/auth/refresh", rest.refresh),
            web.post("/v1/auth/logout", rest.logout),
            web.post("/v1/auth/ticket", rest.ticket),
            web.post("/v1/actions", action_routes.submit),
            web.get("/v1/me", rest.me),
            web.get("/v1/boards", board_routes.board_list),
            web.get("/v1/boards/{board}/top", board_routes.top),
            web.get("/v1/boards/{board}/around/{player_id}", board_routes.around),
            web.get("/v1/boards/{board}/players", board_routes.players),
            web.get("/v1/boards/{board}/players/{player_id}", board_routes.player),
            web.get("/v1/boards/{board}/periods", board_routes.periods),
            web.get("/v1/ws", ws.websocket),
            web.get("/healthz", rest.healthz),
            web.get("/readyz", rest.readyz),
            web.get("/metrics", make_aiohttp_handler()),
            web.get("/v1/openapi.json", api_docs.openapi),
            web.get("/", page.index),
            web.get("/static/{name}", page.static),
        ]
    )
    return app


def _connections(settings: GatewaySettings):
    async def open_and_close(app: web.Application):
        names = Names(settings.namespace)
        clients = await connect(settings)
        await ensure_actions_stream(clients.js, names, replicas=settings.stream_replicas)
        fanout = Fanout(clients, settings.board_view_size)
        rates = ActionRates(settings.action_rate_per_second, settings.action_burst)
        top_cache = TopCache(settings.top_cache_seconds)
        context = app[CONTEXT] = Context(settings, names, clients, fanout, rates, top_cache)
        changes = await clients.nc.subscribe(names.board_changes_subject, cb=top_cache.on_change)
        ended = await follow_ended_sessions(clients.nc, names, context.sessions)
        sweep = asyncio.create_task(
            sweep_ended_sessions(clients, context.sessions, settings.session_sweep_seconds)
        )
        stuck = asyncio.create_task(ws.close_stuck_sockets(context))

        yield

        stuck.cancel()
        sweep.cancel()
        await changes.unsubscribe()
        await ended.unsubscribe()
        await fanout.close()
        await clients.close()

    return open_and_close


async def drain(app: web.Application) -> None:
    """Leave gracefully (SIGTERM): readiness turns false and new sockets are refused at once;
    after the grace period, in which load balancers stop sending players here, every open
    socket gets its pending results and then 1001."""
    context = app[CONTEXT]
    context.draining = True
    grace = context.settings.drain_grace_seconds
    log.info("draining", sockets=len(context.players), grace_seconds=grace)

    await asyncio.sleep(grace)
    await _close_sockets(app)
    log.info("drained")


async def _close_sockets(app: web.Application) -> None:
    """Tell every player still here we are going away (1001), so that clients reconnect
    elsewhere; a drain (gateway.drain) has normally closed them all already."""
    await asyncio.gather(*(player.go_away() for player in list(app[CONTEXT].players)))
