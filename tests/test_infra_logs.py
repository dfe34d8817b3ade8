"""infra.logs in a process of its own (logging is configured once per process): JSON lines
that carry the context bound for the work in hand, and never a credential's value."""

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """
import structlog
from infra.logs import configure_logging

configure_logging("probe")
log = structlog.get_logger("probe")
with structlog.contextvars.bound_contextvars(action_id="a-1", session_key="s-1"):
    log.info("acted", password="hunter2", access_token="eyJ.payload.signature", points=3)
log.info("after")
"""


def test_lines_carry_bound_context_and_hide_credentials():
    ran = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, check=True, timeout=30
    )

    acted, after = [orjson.loads(line) for line in ran.stdout.splitlines()]
    assert (acted["event"], acted["service"], acted["points"]) == ("acted", "probe", 3)
    assert (acted["action_id"], acted["session_key"]) == ("a-1", "s-1")
    assert acted["password"] == acted["access_token"] == "[redacted]"
    assert b"hunter2" not in ran.stdout and b"signature" not in ran.stdout
    assert "action_id" not in after and "session_key" not in after
