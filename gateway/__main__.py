"""Run the gateway: python -m gateway."""

import structlog
import uvloop
from aiohttp import web

from gateway import http_log
from gateway.app import build_app, drain
from gateway.config import GatewaySettings
from infra.grpc_server import stop_event
from infra.logs import configure_logging

log = structlog.get_logger("gateway")


async def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    http_log.install()
    stop = stop_event()

    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    port = runner.addresses[0][1]
    log.info("serving", port=port, url=f"http://{settings.http_host}:{port}")

    await stop.wait()
    log.info("stopping")
    await drain(app)
    await runner.cleanup()
    log.info("stopped")


if __name__ == "__main__":
    uvloop.run(main())
