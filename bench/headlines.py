"""The headline figures of a bench/run.py run: where each is in the results, the raw limit it
is a ratio of, the issue's target, and the Markdown table that sets all of that beside the
previous published run.

Pure functions of the result dict, so that they can be tested on a made-up one.
"""

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

# The open-loop levels of bench/game_throughput.py, as fractions of the maximum rate.
LEVELS = (0.25, 0.5, 0.9)
# Prose lines of the report, as in the docs it goes into.
WIDTH = 99


@dataclass(frozen=True)
class Target:
    """`op` is ">=" or "<=", and applies to the value, or to value / raw when `of_ratio`."""

    op: str
    limit: float
    of_ratio: bool = False

    def text(self, unit: str) -> str:
        if self.of_ratio:
            return f"{self.op} {self.limit:g}x raw"
        return f"{self.op} {self.limit:,g} {unit}"


@dataclass(frozen=True)
class Headline:
    label: str
    unit: str
    value: Callable[[dict], float]
    raw: Callable[[dict], float] | None = None
    raw_label: str = ""
    targets: tuple[Target, ...] = field(default=())


def _level(figures: dict, fraction: float) -> dict:
    for level in figures["game"]["end_to_end"]["curve"]:
        if level["fraction"] == fraction:
            return level
    raise KeyError(fraction)


def _largest_reads(figures: dict) -> dict:
    return max(figures["reads"]["sizes"], key=lambda size: size["players"])


def _pull_ack(figures: dict) -> float:
    return figures["raw"]["jetstream"]["pull_ack_per_s"]


def _game_rows() -> list[Headline]:
    rows = [
        Headline(
            "end to end, maximum (closed loop)",
            "actions/s",
            lambda f: f["game"]["end_to_end"]["maximum"]["actions_per_s"],
            _pull_ack,
            "JetStream pull+ack",
            (Target(">=", 5000), Target(">=", 0.7, of_ratio=True)),
        ),
        Headline(
            "game workers alone",
            "actions/s",
            lambda f: f["game"]["workers_alone"]["actions_per_s"],
            _pull_ack,
            "JetStream pull+ack",
        ),
    ]
    for fraction in LEVELS:
        for stat in ("p50", "p95", "p99"):
            target = (Target("<=", 50),) if (fraction, stat) == (0.5, "p99") else ()
            rows.append(
                Headline(
                    f"action -> result {stat}, open loop at {fraction:.0%} of the maximum",
                    "ms",
                    lambda f, fraction=fraction, stat=stat: _level(f, fraction)[f"{stat}_ms"],
                    targets=target,
                )
            )
    return rows


def _push_rows() -> list[Headline]:
    def last_socket(stat: str) -> Callable[[dict], float]:
        return lambda f: f["push"]["phases"][0]["figures"]["send_to_last_socket"][stat]

    return [
        Headline("board push, score sent -> last socket p50", "ms", last_socket("p50_ms")),
        Headline(
            "board push, score sent -> last socket p99",
            "ms",
            last_socket("p99_ms"),
            targets=(Target("<=", 100),),
        ),
    ]


def _reads_rows() -> list[Headline]:
    def read(op: str, stat: str) -> Callable[[dict], float]:
        return lambda f: _largest_reads(f)["latency"][op][stat]

    rows = []
    for op, name, stats in (
        ("gateway_top", "top 100 via gateway REST", ("p50_ms", "p99_ms")),
        ("grpc_top", "top 100 via ranking gRPC", ("p99_ms",)),
        ("gateway_around", "around a player via gateway REST", ("p99_ms",)),
        ("gateway_player", "one player's rank via gateway REST", ("p99_ms",)),
    ):
        for stat in stats:
            top = op.endswith("_top")
            rows.append(
                Headline(
                    f"{name} {stat[:3]}, largest board",
                    "ms",
                    read(op, stat),
                    read("raw_zrevrange", stat) if top else None,
                    "ZREVRANGE 0 99, same key" if top else "",
                    (Target("<=", 3, of_ratio=True),) if op == "gateway_top" else (),
                )
            )
    return rows


def _memory_rows() -> list[Headline]:
    def bare(f: dict) -> float:
        memory = f["memory"]
        count = memory["bare"]["readings"][-1]["sockets"]
        return memory["bare"]["per_socket"][f"at_{count}"]["rss_kib"]

    return [
        Headline(
            "gateway RSS per idle subscribed socket",
            "KiB",
            lambda f: f["memory"]["gateway_rss_kib_per_socket"],
            bare,
            "bare aiohttp server",
            (Target("<=", 50),),
        )
    ]


def _raw_rows() -> list[Headline]:
    def raw(*path: str) -> Callable[[dict], float]:
        def get(f: dict) -> float:
            value = f["raw"]
            for key in path:
                value = value[key]
            return value

        return get

    return [
        Headline("raw JetStream fetch(256) + ack", "msg/s", raw("jetstream", "pull_ack_per_s")),
        Headline("raw JetStream publish", "msg/s", raw("jetstream", "publish_per_s")),
        Headline(
            "raw Postgres, 1 action/transaction",
            "tx/s",
            raw("postgres_single", "transactions_per_s"),
        ),
        Headline(
            "raw Postgres, 256 actions/transaction",
            "actions/s",
            raw("postgres_batched", "actions_per_s"),
        ),
        Headline(
            "raw Redis ZADD, pipelines of 1,000", "members/s", raw("redis", "zadd_members_per_s")
        ),
        Headline(
            "raw Redis ZREVRANGE 0 99 WITHSCORES p50",
            "ms",
            raw("redis", "zrevrange_top100", "p50_ms"),
        ),
        Headline(
            "raw Redis ZREVRANGE 0 99 WITHSCORES p99",
            "ms",
            raw("redis", "zrevrange_top100", "p99_ms"),
        ),
    ]


# Which part of bench/run.py each group of rows comes from.
HEADLINES: dict[str, list[Headline]] = {
    "game": _game_rows(),
    "push": _push_rows(),
    "reads": _reads_rows(),
    "memory": _memory_rows(),
    "raw": _raw_rows(),
}


def pick(read: Callable[[dict], float] | None, figures: dict) -> float | None:
    """The figure `read` finds, or None when the run does not have it."""
    if read is None:
        return None
    try:
        value = read(figures)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value if isinstance(value, int | float) else None


def number(value: float | None, unit: str) -> str:
    """A figure as a reader wants it: thousands separated, ms to a useful precision."""
    if value is None:
        return "n/a"
    if unit in ("ms", "KiB"):
        return f"{value:.2f}" if value < 10 else f"{value:,.1f}"
    if unit == "x":
        return f"{value:.2f}"
    return f"{round(value):,}"


def verdict(target: Target, value: float | None, ratio: float | None, unit: str) -> str:
    """Met, or missed and by how much."""
    got = ratio if target.of_ratio else value
    if got is None:
        return "not measured"
    shown_unit = "x" if target.of_ratio else unit
    shown = f"{number(got, shown_unit)}{'x' if target.of_ratio else ' ' + unit}"
    if target.op == ">=":
        if got >= target.limit:
            return f"met ({shown})"
        short = (target.limit - got) / target.limit
        gap = number(target.limit - got, shown_unit)
        return f"**missed** by {gap}{'x' if target.of_ratio else ' ' + unit} ({short:.0%} short)"
    if got <= target.limit:
        return f"met ({shown})"
    over = got / target.limit
    gap = number(got - target.limit, shown_unit)
    return f"**missed** by {gap}{'x' if target.of_ratio else ' ' + unit} ({over:.1f}x the limit)"


def _change(now: float | None, before: float | None) -> str:
    if before is None:
        return "-"
    if now is None or before == 0:
        return "was " + str(before)
    return f"{(now - before) / before:+.0%}"


def table(result: dict, previous: dict | None) -> list[str]:
    """The Markdown table of every headline figure of `result`'s parts, each beside its raw
    limit, the target and the previous published run's figure."""
    figures = result["figures"]
    before = previous["figures"] if previous else {}
    lines = [
        "| figure | this run | raw limit, same run | ratio | target | verdict | previous"
        " | change |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for part, headlines in HEADLINES.items():
        if part not in figures:
            continue
        for headline in headlines:
            value = pick(headline.value, figures)
            raw = pick(headline.raw, figures)
            ratio = value / raw if value is not None and raw else None
            old = pick(headline.value, before)
            cells = [
                headline.label,
                f"{number(value, headline.unit)} {headline.unit}",
                f"{number(raw, headline.unit)} {headline.unit} ({headline.raw_label})"
                if headline.raw
                else "",
                f"{ratio:.2f}x" if ratio is not None else "",
                ", ".join(t.text(headline.unit) for t in headline.targets),
                "; ".join(verdict(t, value, ratio, headline.unit) for t in headline.targets),
                f"{number(old, headline.unit)} {headline.unit}" if old is not None else "-",
                _change(value, old),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(result: dict) -> list[dict]:
    """Every target of the run's parts: met or not, and the verdict's words."""
    figures = result["figures"]
    found = []
    for part, headlines in HEADLINES.items():
        if part not in figures:
            continue
        for headline in headlines:
            value = pick(headline.value, figures)
            raw = pick(headline.raw, figures)
            ratio = value / raw if value is not None and raw else None
            for target in headline.targets:
                words = verdict(target, value, ratio, headline.unit)
                found.append(
                    {
                        "figure": headline.label,
                        "target": target.text(headline.unit),
                        "met": words.startswith("met"),
                        "verdict": words.replace("**", ""),
                    }
                )
    return found


def machine_line(machine: dict) -> str:
    return (
        f"{machine.get('cpu_model')}, {machine.get('cpus')} CPUs, {machine.get('memory_gib')}"
        f" GiB RAM, Linux {machine.get('kernel')}, Python {machine.get('python')}, Postgres"
        f" {machine.get('postgres')}, Redis {machine.get('redis')}, NATS {machine.get('nats')}"
    )


def report(result: dict, previous: dict | None) -> str:
    """The run as Markdown: what made it, on what machine, the table, what was left out."""
    settings = result["settings"]
    when = previous["when"] if previous else None
    load = ", ".join(f"{n:.2f}" for n in result["machine"].get("load_average", []))
    prose = [
        f"Run of {result['when']} at commit {result.get('commit')}: `{result['command']}`"
        f" ({result['seconds']:.0f} s).",
        f"Machine: {machine_line(result['machine'])}. Load average (1, 5, 15 min) at the"
        f" start: {load}.",
    ]
    if previous:
        prose.append(f"Previous published run: {when} (`{previous.get('command')}`).")
    lines = [line for text in prose for line in (textwrap.fill(text, WIDTH), "")]
    lines += table(result, previous)
    notes = [
        f"Part `{part}` has no figures: {why}"
        for part, why in {**result.get("skipped", {}), **result.get("failed", {})}.items()
    ]
    if settings.get("quick"):
        notes.append("A `--quick` run: small sizes, not comparable with a full one.")
    for note in notes:
        lines += ["", textwrap.fill(note, WIDTH)]
    return "\n".join(lines)
