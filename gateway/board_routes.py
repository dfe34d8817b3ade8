"""REST reads of boards: definitions, pages of the top, neighbourhoods, players and periods.

Query parameters are checked here, each with its own code, before anything reaches ranking;
ranking checks again what only it can judge (periods, player ids, cursors).
"""

import time

import orjson
from aiohttp import web

from gateway.context import CONTEXT
from gateway.views import entry_body, player_list
from infra.boards import boards
from infra.errors import PodiumError

DEFAULT_TOP_LIMIT = 10
DEFAULT_RADIUS = 5
MAX_ROWS = 101
DEFAULT_PERIODS = 10
# Cursors ranking gives are about 150 characters; anything far longer is not one of them.
MAX_CURSOR_CHARS = 512


async def board_list(request: web.Request) -> web.Response:
    """GET /v1/boards: how each board ranks and resets, and its current period."""
    now = time.time_ns() // 1_000_000
    return web.json_response(
        {
            "boards": [
                {
                    "id": board.id,
                    "order": board.order,
                    "operator": board.operator,
                    "reset": board.reset,
                    "subscore": board.subscore,
                    "ranks": board.ranks,
                    "period": board.period_at(now),
                }
                for board in boards().values()
            ]
        }
    )


async def top(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/top?limit=N[&period=P][&cursor=C][&pin=1]."""
    limit = _int_query(request, "limit", DEFAULT_TOP_LIMIT, "INVALID_LIMIT")
    cursor, pin = _cursor(request), _pin(request)
    board, period = request.match_info["board"], request.query.get("period", "")
    context = request.app[CONTEXT]

    async def read() -> bytes:
        reply = await context.clients.get_top(board, period, limit, cursor, pin)
        body = {**_board_body(reply), "next_cursor": reply.next_cursor, "total": reply.total}
        return orjson.dumps(body)

    first_page = not cursor and not pin
    if first_page and context.top_cache.enabled:
        body = await context.top_cache.page((board, period, limit), read)
    else:
        body = await read()
    return web.Response(body=body, content_type="application/json")


async def around(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/around/{player_id}?radius=R or ?rows=N [&period=P]."""
    if "radius" in request.query and "rows" in request.query:
        raise PodiumError("INVALID_ROWS", "give radius or rows, not both")
    radius = _int_query(request, "radius", DEFAULT_RADIUS, "INVALID_RADIUS")
    rows = _int_query(request, "rows", 0, "INVALID_ROWS")
    if "rows" in request.query and not 1 <= rows <= MAX_ROWS:
        raise PodiumError("INVALID_ROWS", f"rows must be 1-{MAX_ROWS}")
    board, period = request.match_info["board"], request.query.get("period", "")
    player_id = request.match_info["player_id"]

    clients = request.app[CONTEXT].clients
    reply = await clients.get_around(board, period, player_id, radius, rows)
    return web.json_response(_board_body(reply))


async def player(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/players/{player_id}[?period=P]: one player's standing."""
    board, period = request.match_info["board"], request.query.get("period", "")
    player_id = request.match_info["player_id"]

    reply = await request.app[CONTEXT].clients.get_player_rank(board, period, player_id)
    return web.json_response(
        {
            "board": reply.board,
            "period": reply.period,
            "seq": reply.seq,
            "entry": entry_body(reply.entry),
        }
    )


async def players(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/players?ids=A,B,C[&period=P]: friends ranked among themselves."""
    ids = request.query.getall("ids", [])
    if len(ids) != 1:
        raise PodiumError("INVALID_PLAYER_IDS", "give 'ids' once, as comma-separated player ids")
    try:
        player_ids = player_list(ids[0].split(","))
    except ValueError as error:
        raise PodiumError("INVALID_PLAYER_IDS", str(error)) from None
    board, period = request.match_info["board"], request.query.get("period", "")

    reply = await request.app[CONTEXT].clients.get_players(board, period, list(player_ids))
    return web.json_response(_board_body(reply, board_ranks=True))


async def periods(request: web.Request) -> web.Response:
    """GET /v1/boards/{board}/periods?limit=N: the board's periods, newest first."""
    limit = _int_query(request, "limit", DEFAULT_PERIODS, "INVALID_LIMIT")
    board = request.match_info["board"]

    reply = await request.app[CONTEXT].clients.list_periods(board, limit)
    return web.json_response(
        {
            "board": reply.board,
            "periods": [
                {
                    "period": period.period,
                    "opened_at": period.opened_at_unix_ms,
                    "closed_at": period.closed_at_unix_ms or None,
                }
                for period in reply.periods
            ],
        }
    )


def _board_body(reply, board_ranks: bool = False) -> dict:
    return {
        "board": reply.board,
        "period": reply.period,
        "seq": reply.seq,
        "entries": [entry_body(entry, board_ranks) for entry in reply.entries],
    }


def _int_query(request: web.Request, name: str, default: int, code: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    # isdigit() alone would let "²" and other non-ASCII digits through to int().
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise PodiumError(code, f"'{name}' must be a small non-negative integer")
    return int(raw)


def _cursor(request: web.Request) -> str:
    cursor = request.query.get("cursor", "")
    if not cursor.isascii() or len(cursor) > MAX_CURSOR_CHARS:
        raise PodiumError("INVALID_CURSOR", "the cursor is not one this board gave")
    return cursor


def _pin(request: web.Request) -> bool:
    pin = request.query.get("pin", "0")
    if pin not in ("0", "1"):
        raise PodiumError("INVALID_PIN", "'pin' must be 0 or 1")
    return pin == "1"
