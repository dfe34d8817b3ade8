"""The one benchmark command: every part of bench/ in one run, as one JSON file, a Markdown
table and a throughput-latency plot, each figure beside the previous published run's.

Parts, in the order they run (each a module of bench/ with `async def measure(options)`):
raw (raw.py: the raw limits the other figures are ratios of), game (game_throughput.py),
push (push_fanout.py), reads (reads.py), memory (socket_memory.py). A part whose module is
not there is skipped with a message; a part that fails is reported and the others still run.

The files go to bench/results/run-<when>.{json,md,png}. `--publish` also writes the run to
bench/published.json (the figures the next run is compared with) and its table to the results
section of docs/benchmarks.md; `--publish-run` does that for a full run made before.

    .venv/bin/python bench/run.py [--quick] [--publish] [--only raw,game,push,reads,memory]
    .venv/bin/python bench/run.py --publish-run bench/results/run-<when>.json
"""

import argparse
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import uvloop
from harness import RESULTS, progress, utc_now
from headlines import report, targets
from machine import describe

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PARTS = {
    "raw": "raw",
    "game": "game_throughput",
    "push": "push_fanout",
    "reads": "reads",
    "memory": "socket_memory",
}
# --quick's options beyond each part's own --quick, so that the whole run stays under two
# minutes: the reads on one board of 10,000 players only.
QUICK = {"reads": {"sizes": [10_000], "requests": 100, "load_seconds": 0.5}}
PUBLISHED = BENCH / "published.json"
DOCS = ROOT / "docs" / "benchmarks.md"
DOCS_PLOT = ROOT / "docs" / "benchmarks-latency.png"
START_MARK = "<!-- bench/run.py results: start -->"
END_MARK = "<!-- bench/run.py results: end -->"


def _parts(only: str | None) -> list[str]:
    if not only:
        return list(PARTS)
    asked = [part.strip() for part in only.split(",") if part.strip()]
    unknown = [part for part in asked if part not in PARTS]
    if unknown or not asked:
        raise SystemExit(f"--only takes some of {','.join(PARTS)}; not {','.join(unknown)}")
    return [part for part in PARTS if part in asked]


def _measure_of(part: str):
    """The part's measure(), or the reason it cannot run."""
    module = PARTS[part]
    if not (BENCH / f"{module}.py").exists():
        return None, f"bench/{module}.py is not there"
    loaded = importlib.import_module(module)
    if not hasattr(loaded, "measure"):
        return None, f"bench/{module}.py has no measure()"
    return loaded.measure, None


def _commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}{' with local changes' if dirty else ''}" if head else None


async def run(parts: list[str], quick: bool) -> dict:
    began = time.monotonic()
    result = {
        "when": utc_now(),
        "command": shlex.join(["python", "bench/run.py", *sys.argv[1:]]),
        "commit": _commit(),
        "machine": await describe(),
        "settings": {"quick": quick, "parts": parts},
        "figures": {},
        "part_seconds": {},
        "skipped": {},
        "failed": {},
    }
    for n, part in enumerate(parts, 1):
        measure, why = _measure_of(part)
        if measure is None:
            progress(f"[{n}/{len(parts)}] {part}: skipped, {why}")
            result["skipped"][part] = why
            continue
        progress(f"[{n}/{len(parts)}] {part} ({PARTS[part]}.py)")
        started = time.monotonic()
        try:
            options = {"quick": quick, **(QUICK.get(part, {}) if quick else {})}
            result["figures"][part] = await measure(options)
        except Exception as error:  # one part failing must not lose the others
            traceback.print_exc()
            result["failed"][part] = f"failed: {type(error).__name__}: {error}"
            progress(f"[{n}/{len(parts)}] {part} failed: {error!r}")
        seconds = round(time.monotonic() - started, 1)
        result["part_seconds"][part] = seconds
        progress(f"[{n}/{len(parts)}] {part} done in {seconds} s")
    result["seconds"] = round(time.monotonic() - began, 1)
    result["targets"] = targets(result)
    return result


def _previous() -> dict | None:
    return json.loads(PUBLISHED.read_text()) if PUBLISHED.exists() else None


def _write(result: dict, markdown: str) -> dict[str, Path]:
    """The run's JSON, Markdown and (when the game part ran) plot in bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"run-{result['when']}"
    files = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    files["json"].write_text(json.dumps(result, indent=2))
    files["md"].write_text(markdown + "\n")
    if "game" in result["figures"]:
        from plot import draw  # matplotlib only when there is something to draw

        files["png"] = stem.with_suffix(".png")
        draw(result["figures"]["game"], files["png"], f"Podium end to end, {result['when']}")
    return files


def _publish(result: dict, markdown: str, files: dict[str, Path]) -> None:
    """Make this run the published one: bench/published.json and docs/benchmarks.md."""
    PUBLISHED.write_text(json.dumps(result, indent=2) + "\n")
    text = DOCS.read_text()
    if START_MARK not in text or END_MARK not in text:
        raise SystemExit(f"{DOCS} has no {START_MARK} ... {END_MARK} section to write into")
    section = [START_MARK, markdown, ""]
    if "png" in files:
        shutil.copyfile(files["png"], DOCS_PLOT)
        section += [f"![end-to-end throughput against latency]({DOCS_PLOT.name})", ""]
    head, rest = text.split(START_MARK, 1)
    tail = rest.split(END_MARK, 1)[1]
    DOCS.write_text(head + "\n".join(section) + END_MARK + tail)
    progress(f"published to {PUBLISHED.relative_to(ROOT)} and {DOCS.relative_to(ROOT)}")


def _publish_earlier(path: Path) -> None:
    """Publish a full run made before, from its files in bench/results/, without running."""
    result = json.loads(path.read_text())
    if result["settings"]["quick"] or result["settings"]["parts"] != list(PARTS):
        raise SystemExit(f"{path} is not a full run of every part")
    if result["failed"]:
        raise SystemExit(f"{path} has parts that failed: {', '.join(result['failed'])}")
    previous = _previous()
    if previous and previous["when"] == result["when"]:
        previous = None  # published already: what it was compared with is gone
    markdown = report(result, previous)
    files = {"json": path}
    if path.with_suffix(".png").exists():
        files["png"] = path.with_suffix(".png")
    print(markdown)
    _publish(result, markdown, files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under two minutes")
    parser.add_argument("--publish", action="store_true", help="make this the published run")
    parser.add_argument("--only", help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument(
        "--publish-run", type=Path, help="publish an earlier full run (its JSON), not running"
    )
    args = parser.parse_args()
    if args.publish_run:
        _publish_earlier(args.publish_run.resolve())
        return
    parts = _parts(args.only)
    if args.publish and (args.quick or args.only):
        raise SystemExit("--publish takes a full run of every part (no --quick, no --only)")
    os.chdir(ROOT)

    result = uvloop.run(run(parts, args.quick))
    previous = _previous()
    markdown = report(result, previous)
    files = _write(result, markdown)
    print(markdown)
    print("\nwritten to " + ", ".join(str(path) for path in files.values()))
    if result["failed"]:
        raise SystemExit(f"parts failed: {', '.join(result['failed'])}")
    if args.publish:
        _publish(result, markdown, files)


if __name__ == "__main__":
    main()
