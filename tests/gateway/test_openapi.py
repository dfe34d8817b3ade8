"""gateway/openapi.yaml: a valid OpenAPI 3.1 document that describes exactly the routes the
gateway has, with error codes as docs/protocol.md lists them, served as JSON."""

import re
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from gateway import api_docs
from gateway.app import build_app
from gateway.config import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = api_docs.openapi_document()
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# The browser page and its files are not part of the player API.
NOT_API = re.compile(r"^/$|^/static(/|$)")


def _operations(document: dict):
    """(method, path, operation) of every operation the document describes."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def _routed() -> set[tuple[str, str]]:
    """(method, path) of every route of the gateway, built but not started (nothing opens)."""
    app = build_app(GatewaySettings())
    routes = {(route.method, route.resource.canonical) for route in app.router.routes()}
    return {(method, path) for method, path in routes if not NOT_API.match(path)}


def _error_codes(schema: dict) -> set[str]:
    """The codes an error body schema allows, wherever its enum or const sits."""
    codes: set[str] = set()
    for part in schema.get("allOf", []):
        code = part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
        codes.update(code.get("enum", []))
        if "const" in code:
            codes.add(code["const"])
    return codes


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _responses():
    """(label, status, resolved response) of every documented response."""
    for method, path, operation in _operations(DOCUMENT):
        for status, response in operation["responses"].items():
            yield f"{method} {path}", status, _resolve(response)


def _protocol_codes() -> dict[str, str]:
    """Error code -> its HTTP column, from the table of docs/protocol.md."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    rows = re.findall(r"^\| `([A-Z_]+)` \| [^|]* \| ([^|]*) \|", text, re.MULTILINE)
    return {code: http.strip() for code, http in rows}


def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)


def test_every_route_is_described():
    described = {(method, path) for method, path, _ in _operations(DOCUMENT)}
    for method, path in _routed():
        # aiohttp answers HEAD on every GET route; HEAD is the GET without its body.
        wanted = ("GET", path) if method == "HEAD" else (method, path)
        assert wanted in described, f"{method} {path} is routed but not described"


def test_every_described_route_exists():
    routed = _routed()
    for method, path, _ in _operations(DOCUMENT):
        assert (method, path) in routed, f"{method} {path} is described but not routed"


def test_every_error_code_is_one_of_the_protocol_with_its_status():
    table = _protocol_codes()
    for label, status, response in _responses():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        for code in _error_codes(schema):
            assert code in table, f"{label} {status}: {code} is not in docs/protocol.md"
            documented = re.match(r"\d{3}", table[code])
            if documented:
                assert documented.group() == status, f"{label}: {code} is {table[code]}"


def test_every_429_tells_when_to_retry():
    limited = [(label, response) for label, status, response in _responses() if status == "429"]
    assert limited
    for label, response in limited:
        header = _resolve(response["headers"]["Retry-After"])
        assert header["required"], label
        assert header["schema"] == {"type": "integer", "minimum": 1}, label


def test_bearer_routes_say_so_and_answer_401():
    for method, path, operation in _operations(DOCUMENT):
        if {"bearer": []} in operation.get("security", []):
            assert "401" in operation["responses"], f"{method} {path}"


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (
            DOCUMENT["components"]["schemas"]["Uuid"]["pattern"],
            ["0b6a4d0e-2f55-4c1e-a7a3-6f7c1a2b9d10", "0B6A4D0E-2F55-4C1E-A7A3-6F7C1A2B9D10"],
            ["0b6a4d0e2f554c1ea7a36f7c1a2b9d10", "{0b6a4d0e-2f55-4c1e-a7a3-6f7c1a2b9d10}", ""],
        ),
        (
            DOCUMENT["components"]["parameters"]["Period"]["schema"]["pattern"],
            ["", "all", "2026-12-04", "2026-W49", "2026-12", "2026-12-04T06:00Z"],
            ["ALL", "2026-12-4", "2026-W4", "2026-12-04T06:00", "today"],
        ),
        (
            DOCUMENT["components"]["schemas"]["Username"]["pattern"],
            ["ada", "A.d-a_9", "x" * 32],
            ["ad", "x" * 33, "ada!", "adé"],
        ),
    ],
)
def test_patterns_take_what_the_handlers_take(pattern, good, bad):
    """The document's patterns against values the services accept and refuse."""
    assert all(re.search(pattern, value) for value in good)
    assert not any(re.search(pattern, value) for value in bad)


async def test_the_document_is_served_as_json():
    app = web.Application()
    app.router.add_get("/v1/openapi.json", api_docs.openapi)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        reply = await client.get("/v1/openapi.json")
        assert reply.status == 200
        assert reply.content_type == "application/json"
        assert orjson.loads(await reply.read()) == DOCUMENT
