"""The throughput-latency plot of a bench/run.py run: action -> result p50 and p99 at each
open-loop level and at the maximum, against the rate the stack actually answered."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)

LATENCY_TARGET_MS = 50
RATE_TARGET = 5000


def points(game: dict) -> list[tuple[str, float, float, float]]:
    """(label, actions/s answered, p50 ms, p99 ms) from the lightest load to the maximum."""
    e2e = game["end_to_end"]
    found = [
        (f"{level['fraction']:.0%}", level["achieved_per_s"], level["p50_ms"], level["p99_ms"])
        for level in e2e["curve"]
    ]
    top = e2e["maximum"]
    return found + [("max", top["actions_per_s"], top["p50_ms"], top["p99_ms"])]


def draw(game: dict, out: Path, title: str) -> None:
    found = points(game)
    rates = [rate for _, rate, _, _ in found]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    axes.plot(rates, [p50 for _, _, p50, _ in found], "o-", label="p50")
    axes.plot(rates, [p99 for _, _, _, p99 in found], "s-", label="p99")
    for label, rate, _, p99 in found:
        axes.annotate(label, (rate, p99), textcoords="offset points", xytext=(0, 8), ha="center")
    axes.axhline(LATENCY_TARGET_MS, color="grey", linestyle="--", linewidth=1)
    axes.axvline(RATE_TARGET, color="grey", linestyle=":", linewidth=1)
    axes.text(
        0.01,
        LATENCY_TARGET_MS,
        " p99 target at 50 %",
        va="bottom",
        fontsize=8,
        transform=axes.get_yaxis_transform(),
    )
    axes.text(
        RATE_TARGET,
        0.99,
        "5,000/s target ",
        ha="right",
        va="top",
        fontsize=8,
        transform=axes.get_xaxis_transform(),
    )
    axes.set_yscale("log")
    # Room above the highest point for its label.
    axes.set_ylim(top=2 * max(p99 for _, _, _, p99 in found))
    axes.set_xlabel("actions answered per second (end to end)")
    axes.set_ylabel("action -> result latency (ms)")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
