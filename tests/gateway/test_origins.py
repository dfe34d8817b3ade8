"""Browser origins: one normal form, the gateway's own page behind a TLS proxy, and lists."""

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings
from gateway.origins import normal_origin, origin_allowed


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://Game.Example.com", "https://game.example.com"),
        ("https://b.example:443", "https://b.example"),
        ("http://b.example:80", "http://b.example"),
        ("http://b.example:8080", "http://b.example:8080"),
        ("https://b.example:80", "https://b.example:80"),
        ("null", None),
        ("file:///index.html", None),
        ("chrome-extension://abc", None),
        ("", None),
        ("https://", None),
        ("http://[::1", None),
    ],
)
def test_origins_have_one_normal_form(origin, normal):
    assert normal_origin(origin) == normal


LISTED = ["https://game.example", "https://studio.example:8443"]


@pytest.mark.parametrize(
    ("origins", "host", "allowed"),
    [
        ([], "gw.example", True),
        (["https://game.example"], "gw.example", True),
        (["https://GAME.example:443"], "gw.example", True),
        (["https://studio.example:8443"], "gw.example", True),
        (["https://studio.example"], "gw.example", False),
        (["http://game.example"], "gw.example", False),
        (["https://evil.example"], "gw.example", False),
        (["null"], "gw.example", False),
        # The gateway's own page, also when a TLS proxy hands on plain http.
        (["https://gw.example"], "gw.example", True),
        (["https://GW.example"], "gw.EXAMPLE", True),
        (["http://gw.example:8080"], "gw.example:8080", True),
        (["http://gw.example"], "gw.example:80", True),
        (["http://gw.example:8081"], "gw.example:8080", False),
        # Two Origin headers are no browser's, whichever comes first.
        (["https://gw.example", "https://evil.example"], "gw.example", False),
        (["https://evil.example", "https://gw.example"], "gw.example", False),
    ],
)
def test_who_may_open_a_socket(origins, host, allowed):
    assert origin_allowed(origins, host, LISTED) is allowed


def test_a_star_lets_every_page_in():
    assert origin_allowed(["https://anywhere.example"], "gw.example", ["*"])


def test_listed_origins_are_kept_in_normal_form(monkeypatch):
    monkeypatch.setenv("PODIUM_ALLOWED_ORIGINS", "https://Game.Example:443/, http://x:8080, *")
    assert GatewaySettings().allowed_origins == ["https://game.example", "http://x:8080", "*"]


@pytest.mark.parametrize("listed", ["null", "file:///a", "game.example"])
def test_a_listed_origin_that_no_page_has_stops_the_gateway(monkeypatch, listed):
    monkeypatch.setenv("PODIUM_ALLOWED_ORIGINS", listed)
    with pytest.raises(ValidationError):
        GatewaySettings()
