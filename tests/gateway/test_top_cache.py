"""First top pages, cached until their board changes, read once however many ask at once."""

import asyncio

from podium.game.v1 import game_pb2

from gateway.top_cache import TopCache

GLOBAL_10 = ("global", "", 10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Reads:
    """A read that counts its calls and answers what it is told."""

    def __init__(self, body: bytes = b"v1") -> None:
        self.calls = 0
        self.body = body
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.body


class _Message:
    def __init__(self, data: bytes) -> None:
        self.data = data


async def test_a_page_is_read_once_until_its_board_changes():
    cache, reads = TopCache(1.0, Clock()), Reads()

    assert [await cache.page(GLOBAL_10, reads) for _ in range(3)] == [b"v1"] * 3
    assert reads.calls == 1

    reads.body = b"v2"
    change = game_pb2.BoardChange(board="global", period="all", seq=2)
    await cache.on_change(_Message(change.SerializeToString()))
    assert await cache.page(GLOBAL_10, reads) == b"v2"
    assert reads.calls == 2


async def test_another_board_changing_keeps_the_page():
    cache, reads = TopCache(1.0, Clock()), Reads()
    await cache.page(GLOBAL_10, reads)

    cache.board_changed("daily")
    await cache.page(GLOBAL_10, reads)
    assert reads.calls == 1


async def test_a_page_older_than_the_ttl_is_read_again():
    clock = Clock()
    cache, reads = TopCache(1.0, clock), Reads()
    await cache.page(GLOBAL_10, reads)

    clock.now += 1.5
    await cache.page(GLOBAL_10, reads)
    assert reads.calls == 2


async def test_requests_for_a_missing_page_share_one_read():
    cache, reads = TopCache(1.0, Clock()), Reads()
    reads.gate = asyncio.Event()

    pages = [asyncio.create_task(cache.page(GLOBAL_10, reads)) for _ in range(50)]
    await asyncio.sleep(0)
    reads.gate.set()
    assert await asyncio.gather(*pages) == [b"v1"] * 50
    assert reads.calls == 1


async def test_a_page_read_while_its_board_changed_is_not_kept():
    cache, reads = TopCache(1.0, Clock()), Reads()
    reads.gate = asyncio.Event()

    reading = asyncio.create_task(cache.page(GLOBAL_10, reads))
    await asyncio.sleep(0)
    cache.board_changed("global")
    reads.gate.set()
    await reading
    reads.gate = None
    await cache.page(GLOBAL_10, reads)
    assert reads.calls == 2


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept():
    cache = TopCache(1.0, Clock())
    gate = asyncio.Event()

    async def failing() -> bytes:
        await gate.wait()
        raise RuntimeError("ranking is down")

    pages = [asyncio.create_task(cache.page(GLOBAL_10, failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*pages, return_exceptions=True)
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    assert await cache.page(GLOBAL_10, Reads(b"back")) == b"back"


async def test_an_undecodable_change_is_ignored():
    cache, reads = TopCache(1.0, Clock()), Reads()
    await cache.page(GLOBAL_10, reads)

    await cache.on_change(_Message(b"\xff\xff not protobuf"))
    await cache.page(GLOBAL_10, reads)
    assert reads.calls == 1


def test_a_zero_ttl_turns_the_cache_off():
    assert TopCache(0.0).enabled is False
    assert TopCache(0.5).enabled is True
