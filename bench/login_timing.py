"""How long a refused login takes for an unknown username and for a wrong password.

The two must not be told apart by their timing. This starts an AuthService in-process on the
real Postgres and Redis (a namespace and database of its own, removed afterwards), registers
players, and times refused logins of both kinds, interleaved so that machine noise falls on
both alike. It also times argon2id verification alone, the raw cost both kinds should be near.

    .venv/bin/python bench/login_timing.py [--logins 200]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import redis.asyncio as aioredis
from podium.auth.v1 import auth_service_pb2 as pb
from podium.auth.v1 import auth_service_pb2_grpc

from auth.config import AuthSettings
from auth.passwords import Passwords
from auth.server import running
from infra.keygen import write_key
from infra.logs import configure_logging
from infra.migrate import migrate

PASSWORD = "bench password"


async def _timed(call) -> float:
    started = time.perf_counter()
    try:
        await call
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
    return (time.perf_counter() - started) * 1000


def _summary(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49]:6.2f} ms  p90 {cuts[89]:6.2f} ms  mean {statistics.mean(samples):6.2f}"


async def run(logins: int) -> None:
    base = AuthSettings()
    namespace = "bench" + uuid.uuid4().hex[:8]
    dsn = urlunsplit(urlsplit(base.postgres_dsn)._replace(path=f"/podium_{namespace}"))
    await migrate(dsn)
    key_dir = Path(tempfile.mkdtemp())
    write_key(key_dir / "key.pem")
    settings = base.model_copy(
        update={
            "namespace": namespace,
            "postgres_dsn": dsn,
            "auth_listen": "127.0.0.1:0",
            "jwt_private_key_file": key_dir / "key.pem",
        }
    )
    try:
        await _measure(settings, logins)
    finally:
        await _remove(settings, dsn, namespace)


async def _measure(settings: AuthSettings, logins: int) -> None:
    async with running(settings) as port:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = auth_service_pb2_grpc.AuthServiceStub(channel)
            # One wrong password per player keeps every name far below its failure limit.
            players = ["b" + uuid.uuid4().hex[:12] for _ in range(logins)]
            for name in players:
                await stub.Register(pb.RegisterRequest(username=name, password=PASSWORD))

            wrong, unknown = [], []
            for name in players:
                request = pb.LoginRequest(username=name, password=PASSWORD + "!")
                wrong.append(await _timed(stub.Login(request)))
                stranger = "n" + uuid.uuid4().hex[:12]
                request = pb.LoginRequest(username=stranger, password=PASSWORD + "!")
                unknown.append(await _timed(stub.Login(request)))

    passwords = Passwords(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    )
    encoded = await passwords.hash(PASSWORD)
    raw = [await _timed(passwords.verify(encoded, PASSWORD + "!")) for _ in range(logins)]

    print(
        f"argon2id m={settings.argon2_memory_kib} KiB t={settings.argon2_time_cost}, {logins} each"
    )
    print(f"wrong password   {_summary(wrong)}")
    print(f"unknown username {_summary(unknown)}")
    print(f"verify alone     {_summary(raw)}")
    median = statistics.median
    print(f"unknown / wrong median ratio: {median(unknown) / median(wrong):.3f}")
    print(f"wrong / verify-alone median ratio: {median(wrong) / median(raw):.3f}")


async def _remove(settings: AuthSettings, dsn: str, namespace: str) -> None:
    client = aioredis.from_url(settings.redis_url)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    admin = await asyncpg.connect(urlunsplit(urlsplit(dsn)._replace(path="/postgres")))
    await admin.execute(f'DROP DATABASE IF EXISTS "podium_{namespace}" WITH (FORCE)')
    await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=200, help="refused logins of each kind")
    configure_logging("bench", "ERROR")
    asyncio.run(run(parser.parse_args().logins))


if __name__ == "__main__":
    main()
