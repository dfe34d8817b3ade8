"""The player web page: its HTML at `/` and its scripts and styles under `/static/`.

Only the files shipped in gateway/static are served, named exactly; there is no directory
listing and no path can reach outside that folder. The page loads nothing but these files and
talks only to this gateway, which its Content-Security-Policy holds it to.
"""

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# No inline script or style, no plugins, no framing; scripts, styles and the page's REST and
# WebSocket calls all go to this same origin ('self' covers ws: and wss: of it).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# The files are not fingerprinted, so browsers revalidate each time (cheap: a 304 by date).
CACHE_CONTROL = "no-cache"


def _shipped() -> dict[str, Path]:
    """Every file the page may load, by name: looked up once, so a request never names a path."""
    return {
        path.name: path
        for path in STATIC.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix in CONTENT_TYPES
    }


FILES = _shipped()


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: the page itself."""
    return _file_response("index.html")


async def static(request: web.Request) -> web.StreamResponse:
    """GET /static/{name}: one of the page's files, or 404 NOT_FOUND."""
    name = request.match_info["name"]
    if name not in FILES:
        raise web.HTTPNotFound()
    return _file_response(name)


def _file_response(name: str) -> web.FileResponse:
    path = FILES[name]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": CONTENT_TYPES[path.suffix],
            "Cache-Control": CACHE_CONTROL,
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
