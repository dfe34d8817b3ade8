"""Which browser pages may open sockets here, judged by the Origin header they send.

Programs send no Origin and are not asked. A browser always sends one, so a page on another
site cannot open sockets here unless the studio listed that site. The gateway's own page may,
whatever scheme a TLS proxy in front of it took away. Origins are compared in one normal form,
so `https://Game.Example:443` in the list matches what browsers send for that page.
"""

from yarl import URL

DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(origin: str) -> str | None:
    """scheme://host[:port] in lower case without a default port, or None for no web origin
    (`null`, a file: page, anything without a host)."""
    try:
        url = URL(origin.strip())
    except ValueError:
        return None
    if url.scheme not in DEFAULT_PORTS or not url.host:
        return None
    port = url.explicit_port
    suffix = f":{port}" if port not in (None, DEFAULT_PORTS[url.scheme]) else ""
    return f"{url.scheme}://{url.host.lower()}{suffix}"


def origin_allowed(origins: list[str], host: str, allowed: list[str]) -> bool:
    """Whether a request with these Origin headers, sent to `host` (its Host header), may open
    a socket, given the listed origins (normal forms, or "*"). Two Origin headers are no
    browser's and are refused."""
    if not origins:
        return True
    origin = normal_origin(origins[0]) if len(origins) == 1 else None
    if origin is None:
        return False
    return "*" in allowed or origin in allowed or _same_host(origin, host)


def _same_host(origin: str, host: str) -> bool:
    """The origin names the host, and port if either gives one, the request was sent to."""
    host = host.lower()
    name, _, port = host.rpartition(":")
    bare = name if name and port in ("80", "443") else host
    return URL(origin).raw_authority in (host, bare)
