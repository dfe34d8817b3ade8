"""The gateway's record of open sockets by session, and of sessions that have just ended."""

import pytest
from podium.auth.v1 import auth_pb2

from gateway import sessions
from gateway.sessions import SESSION_ENDED_CLOSE_CODE, SessionSockets, close_reason


class Closes:
    """A socket's close callback that remembers how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, code: int, reason: str) -> None:
        self.calls.append((code, reason))


async def test_ending_a_session_closes_each_of_its_sockets_once():
    sockets, first, second, other = SessionSockets(), Closes(), Closes(), Closes()
    await sockets.add("a" * 32, first)
    await sockets.add("a" * 32, second)
    await sockets.add("b" * 32, other)

    closed = await sockets.end("a" * 32, "session ended: logout")
    again = await sockets.end("a" * 32, "session ended: logout")

    assert (closed, again) == (2, 0)
    assert first.calls == second.calls == [(SESSION_ENDED_CLOSE_CODE, "session ended: logout")]
    assert other.calls == []
    assert sockets.session_keys == ["b" * 32]


async def test_a_socket_registering_just_after_its_session_ended_is_closed_at_once():
    """Its token was checked before the event came; without the memory it would stay open."""
    sockets, late = SessionSockets(), Closes()
    await sockets.end("a" * 32, "session ended: banned")

    await sockets.add("a" * 32, late)

    assert late.calls == [(SESSION_ENDED_CLOSE_CODE, "session ended: banned")]
    assert sockets.session_keys == []


async def test_ended_sessions_are_forgotten_after_a_while(monkeypatch):
    sockets, later = SessionSockets(), Closes()
    await sockets.end("a" * 32, "session ended")
    monkeypatch.setattr(sessions, "REMEMBER_ENDED_SECONDS", 0.0)

    await sockets.add("a" * 32, later)

    assert later.calls == []
    assert sockets.session_keys == ["a" * 32]


async def test_the_memory_of_ended_sessions_is_bounded(monkeypatch):
    monkeypatch.setattr(sessions, "REMEMBER_ENDED_MAX", 3)
    sockets, oldest, newest = SessionSockets(), Closes(), Closes()
    for key in "abcd":
        await sockets.end(key * 32, "session ended")

    await sockets.add("a" * 32, oldest)
    await sockets.add("d" * 32, newest)

    assert oldest.calls == []
    assert newest.calls == [(SESSION_ENDED_CLOSE_CODE, "session ended")]


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (auth_pb2.SESSION_END_REASON_LOGOUT, "session ended: logout"),
        (auth_pb2.SESSION_END_REASON_BANNED, "session ended: banned"),
        (auth_pb2.SESSION_END_REASON_REFRESH_REUSED, "session ended: refresh_reused"),
        (auth_pb2.SESSION_END_REASON_UNSPECIFIED, "session ended"),
        (42, "session ended"),
    ],
    ids=["logout", "banned", "refresh_reused", "unspecified", "newer_than_this_gateway"],
)
def test_the_close_reason_names_why_and_survives_reasons_it_does_not_know(reason, text):
    assert close_reason(reason) == text
