"""Run the ranking service: `python -m ranking`, configured by PODIUM_* variables."""

import structlog
import uvloop

from infra.grpc_server import stop_event
from infra.logs import configure_logging
from ranking.config import RankingSettings
from ranking.server import serve

log = structlog.get_logger(__name__)


async def main() -> None:
    """Serve until SIGTERM or SIGINT; a failure to start is logged and exits 1."""
    settings = RankingSettings()
    configure_logging("ranking", settings.log_level)

    try:
        await serve(settings, stop_event())
    except Exception:
        log.exception("ranking_failed")
        raise SystemExit(1) from None


if __name__ == "__main__":
    uvloop.run(main())
