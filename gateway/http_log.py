"""Keep what clients send out of aiohttp's log of requests it could not parse.

aiohttp logs a malformed request (a control character in a header, an oversized header line)
at error level with the offending line in the message, and that line may be an Authorization
header with a live token. Such a request is the client's fault and says nothing about the
gateway, so its record is cut down to the kind of fault, at warning level.
"""

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"


class WithoutClientBytes(logging.Filter):
    """Replace the record of an unparsable request with one that names only the fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, HttpProcessingError):
            record.msg = "bad_http_request: %s (%s)"
            record.args = (type(fault).__name__, fault.code)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install() -> None:
    logging.getLogger(SERVER_LOGGER).addFilter(WithoutClientBytes())
