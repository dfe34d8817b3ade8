"""grpc.health.v1 that follows the stores a server depends on.

A replica whose Postgres, Redis or NATS does not answer can serve nothing; reporting
NOT_SERVING while one is down takes it out of its Service's endpoints (and makes the gateway's
/readyz say so), and SERVING once every store answers again brings it back without a restart.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping

import asyncpg
import nats.aio.client
import redis.asyncio as aioredis
import structlog
from grpc_health.v1 import health, health_pb2
from prometheus_client import Gauge

log = structlog.get_logger(__name__)

# A probe fails by raising, or by taking longer than this.
PROBE_TIMEOUT_SECONDS = 1.0
# A health "service" that is SERVING for as long as the process is not shutting down, whatever
# its stores do: for liveness probes, since restarting a replica brings no store back.
LIVENESS_SERVICE = "liveness"

Probe = Callable[[], Awaitable[object]]

DEPENDENCY_UP = Gauge(
    "podium_dependency_up",
    "1 while a store or service this process needs answers, 0 while it does not.",
    ["dependency"],
)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ServerHealth(health.aio.HealthServicer):
    """The health of one server's services: SERVING only while every probe passes, checked
    every `every_seconds`, and NOT_SERVING for good once the server shuts down. The liveness
    service follows only the shutdown."""

    def __init__(self, probes: Mapping[str, Probe], every_seconds: float) -> None:
        super().__init__()
        self._probes = dict(probes)
        self._every = every_seconds
        self._services = [""]
        self._down: dict[str, str] = {}
        self._status: int | None = None
        self._task: asyncio.Task | None = None

    async def start(self, services: Iterable[str]) -> None:
        """Publish the services with the status the probes give now, and keep checking."""
        self._services = ["", *services]
        await self.set(LIVENESS_SERVICE, _SERVING)
        await self._report(await self.check())
        if self._probes:
            self._task = asyncio.create_task(self._watch(), name="dependency-health")

    async def check(self) -> dict[str, str]:
        """The dependencies that fail their probe now, each with what went wrong."""
        failures = await asyncio.gather(*(_failure(probe) for probe in self._probes.values()))
        return {
            name: failure
            for name, failure in zip(self._probes, failures, strict=True)
            if failure is not None
        }

    async def enter_graceful_shutdown(self) -> None:
        """Stop checking, so that nothing can report SERVING again, then go NOT_SERVING."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await super().enter_graceful_shutdown()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            await self._report(await self.check())

    async def _report(self, down: dict[str, str]) -> None:
        for name in self._probes:
            DEPENDENCY_UP.labels(name).set(0 if name in down else 1)
        for name in down.keys() - self._down.keys():
            log.warning("dependency_down", dependency=name, error=down[name])
        for name in self._down.keys() - down.keys():
            log.info("dependency_up", dependency=name)
        self._down = down

        status = _NOT_SERVING if down else _SERVING
        if status != self._status:
            self._status = status
            for service in self._services:
                await self.set(service, status)


async def _failure(probe: Probe) -> str | None:
    """What the probe failed with, or None when it passed in time. Any exception counts: a
    store that answers with nonsense is as unusable as one that does not answer."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await probe()
    except TimeoutError:
        return "timed out"
    except Exception as exc:
        return repr(exc)
    return None


def postgres_probe(pools: Iterable[asyncpg.Pool]) -> Probe:
    """A query on a pooled connection of every database, as a call would make it (a pool
    that cannot lend one within the timeout counts as down: calls would wait as long)."""

    async def probe() -> None:
        for pool in pools:
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")

    return probe


def nats_probe(nc: nats.aio.client.Client) -> Probe:
    """A round trip to the server; a client that is reconnecting is down without one."""

    async def probe() -> None:
        if not nc.is_connected:
            raise ConnectionError("not connected")
        await nc.flush(timeout=PROBE_TIMEOUT_SECONDS)

    return probe


def store_probes(
    pools: Iterable[asyncpg.Pool], redis: aioredis.Redis, nc: nats.aio.client.Client
) -> dict[str, Probe]:
    """Probes of the three stores every gRPC service of Podium uses."""
    return {"postgres": postgres_probe(pools), "redis": redis.ping, "nats": nats_probe(nc)}
