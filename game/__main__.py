"""Run a game worker: `python -m game`, configured by PODIUM_* variables, until SIGTERM."""

import uvloop

from game.config import GameSettings
from game.worker import serve
from infra.grpc_server import stop_event
from infra.logs import configure_logging


async def main() -> None:
    settings = GameSettings()
    configure_logging("game", settings.log_level)
    await serve(settings, stop_event())


if __name__ == "__main__":
    uvloop.run(main())
