"""What every benchmark here shares: progress lines, free ports, database names, results.

Each benchmark runs as a script (`python bench/<name>.py`), so this module is imported by its
plain name from the same folder.
"""

import json
import multiprocessing
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

RESULTS = Path(__file__).resolve().parent / "results"


def progress(step: str) -> None:
    """One line on stderr, so that the report on stdout stays clean."""
    print(f"... {step}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_dsn(base: str, database: str) -> str:
    """The DSN `base` with another database."""
    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


def save(name: str, result: dict, report: str) -> None:
    """Write the run to bench/results/<name>-<when>.json and print its report."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{result['when']}.json"
    out.write_text(json.dumps(result, indent=2))
    print(report)
    print(f"\nwritten to {out}")


def spawn(target, *args) -> tuple:
    """A client process running `target(*args, pipe)`, and our end of its pipe."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    return process, ours


def utc_now() -> str:
    """When a run happened, as its results file is named."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
