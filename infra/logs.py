"""JSON log lines on stdout for every service; only an entrypoint calls configure_logging."""

import logging
import sys

import orjson
import structlog

# Fields whose values are credentials. No code logs them; should a line ever carry one, the
# value is replaced before it is written, since log stores are read by many and kept long.
SECRET_FIELDS = frozenset(
    {"password", "token", "access_token", "refresh_token", "ticket", "authorization"}
)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Render structlog and stdlib records (grpc, aiohttp, asyncio) as one JSON line each."""
    shared = [
        structlog.contextvars.merge_contextvars,
        _redact_secrets,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _add_service(service),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _redact_secrets(_logger, _method, event: dict) -> dict:
    for name in SECRET_FIELDS & event.keys():
        event[name] = "[redacted]"
    return event


def _add_service(service: str):
    def add(_logger, _method, event: dict) -> dict:
        event["service"] = service
        return event

    return add


def _dumps(obj, **_kwargs) -> str:
    return orjson.dumps(obj, default=str).decode()
