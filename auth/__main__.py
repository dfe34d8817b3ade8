"""Run the auth service: `python -m auth`, configured from PODIUM_* variables."""

import uvloop

from auth.config import AuthSettings
from auth.server import serve
from infra.grpc_server import stop_event
from infra.logs import configure_logging


async def main() -> None:
    settings = AuthSettings()
    configure_logging("auth", settings.log_level)

    await serve(settings, stop_event())


if __name__ == "__main__":
    uvloop.run(main())
