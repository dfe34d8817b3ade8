"""GET /v1/openapi.json: the OpenAPI description of the REST routes, for tools and people.

The description is written by hand as YAML beside this module (gateway/openapi.yaml), where
comments and long texts read well; clients get it as JSON, read and encoded once per process.
"""

import functools
from importlib import resources

import orjson
import yaml
from aiohttp import web


def openapi_document() -> dict:
    """A fresh copy of the parsed description, which the caller may change as it likes."""
    text = resources.files("gateway").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.cache
def _openapi_json() -> bytes:
    """The description as served: parsed and encoded on the first request only."""
    return orjson.dumps(openapi_document())


async def openapi(request: web.Request) -> web.Response:
    """GET /v1/openapi.json -> this gateway's OpenAPI document."""
    return web.Response(body=_openapi_json(), content_type="application/json")
