"""The pure part of bench/run.py: headline figures, ratios, targets and the comparison with the
published run, on made-up results (no benchmark runs here)."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "headlines", Path(__file__).resolve().parents[1] / "bench" / "headlines.py"
)
headlines = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(headlines)


def _level(fraction: float, p50: float, p95: float, p99: float) -> dict:
    return {"fraction": fraction, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def _result(e2e: int = 6000, p99_half: float = 120.0, **parts) -> dict:
    figures = {
        "raw": {
            "jetstream": {"pull_ack_per_s": 10_000, "publish_per_s": 20_000},
            "postgres_single": {"transactions_per_s": 3000},
            "postgres_batched": {"actions_per_s": 40_000},
            "redis": {
                "zadd_members_per_s": 250_000,
                "zrevrange_top100": {"p50_ms": 0.2, "p99_ms": 0.5},
            },
        },
        "game": {
            "workers_alone": {"actions_per_s": 8000},
            "end_to_end": {
                "maximum": {"actions_per_s": e2e, "p50_ms": 200.0, "p99_ms": 400.0},
                "curve": [
                    _level(0.25, 5.0, 9.0, 12.0),
                    _level(0.5, 8.0, 40.0, p99_half),
                    _level(0.9, 30.0, 150.0, 300.0),
                ],
            },
        },
        "push": {
            "phases": [{"figures": {"send_to_last_socket": {"p50_ms": 60.0, "p99_ms": 90.0}}}]
        },
        "memory": {
            "gateway_rss_kib_per_socket": 64.0,
            "bare": {
                "readings": [{"sockets": 1000}, {"sockets": 10_000}],
                "per_socket": {"at_10000": {"rss_kib": 16.0}},
            },
        },
    }
    figures.update(parts)
    return {
        "when": "2026-12-04T18:00:00Z",
        "command": "python bench/run.py",
        "commit": "abc1234",
        "seconds": 300.0,
        "machine": {"cpu_model": "Test CPU", "cpus": 2, "load_average": [1.0, 2.0, 3.0]},
        "settings": {"quick": False},
        "figures": figures,
    }


def _row(lines: list[str], label: str) -> list[str]:
    matching = [line for line in lines if line.startswith(f"| {label} |")]
    assert len(matching) == 1, (label, lines)
    return [cell.strip() for cell in matching[0].strip("|").split("|")]


def test_end_to_end_row_has_ratio_both_targets_and_the_change_from_the_published_run():
    lines = headlines.table(_result(e2e=6000), _result(e2e=5000))

    row = _row(lines, "end to end, maximum (closed loop)")

    assert row[1] == "6,000 actions/s"
    assert row[2] == "10,000 actions/s (JetStream pull+ack)"
    assert row[3] == "0.60x"
    assert row[4] == ">= 5,000 actions/s, >= 0.7x raw"
    assert row[5] == "met (6,000 actions/s); **missed** by 0.10x (14% short)"
    assert row[6] == "5,000 actions/s"
    assert row[7] == "+20%"


def test_latency_over_its_limit_says_by_how_much():
    lines = headlines.table(_result(p99_half=120.0), None)

    row = _row(lines, "action -> result p99, open loop at 50% of the maximum")

    assert row[1] == "120.0 ms"
    assert row[5] == "**missed** by 70.0 ms (2.4x the limit)"
    assert row[6] == "-"
    quarter = _row(lines, "action -> result p99, open loop at 25% of the maximum")
    assert quarter[4] == quarter[5] == ""


def test_ratio_target_of_reads_uses_the_raw_read_of_the_same_run():
    reads = {
        "sizes": [
            {"players": 10_000, "latency": {}},
            {
                "players": 1_000_000,
                "latency": {
                    "gateway_top": {"p50_ms": 1.0, "p99_ms": 2.0},
                    "grpc_top": {"p50_ms": 0.8, "p99_ms": 1.5},
                    "raw_zrevrange": {"p50_ms": 0.25, "p99_ms": 1.0},
                },
            },
        ]
    }

    lines = headlines.table(_result(reads=reads), None)

    p50 = _row(lines, "top 100 via gateway REST p50, largest board")
    assert p50[3] == "4.00x"
    assert p50[5] == "**missed** by 1.00x (1.3x the limit)"
    p99 = _row(lines, "top 100 via gateway REST p99, largest board")
    assert p99[3] == "2.00x"
    assert p99[5] == "met (2.00x)"
    around = _row(lines, "around a player via gateway REST p99, largest board")
    assert around[1] == "n/a ms"


def test_parts_not_run_have_no_rows_and_figures_missing_are_not_measured():
    result = _result()
    del result["figures"]["push"]
    del result["figures"]["game"]["end_to_end"]["curve"][1]

    lines = headlines.table(result, None)

    assert not any("board push" in line for line in lines)
    row = _row(lines, "action -> result p99, open loop at 50% of the maximum")
    assert row[1] == "n/a ms"
    assert row[5] == "not measured"


def test_targets_lists_every_target_of_the_parts_run_with_met_or_not():
    found = {(entry["figure"], entry["target"]): entry for entry in headlines.targets(_result())}

    assert found[("end to end, maximum (closed loop)", ">= 5,000 actions/s")]["met"] is True
    assert found[("end to end, maximum (closed loop)", ">= 0.7x raw")]["met"] is False
    assert found[("board push, score sent -> last socket p99", "<= 100 ms")]["met"] is True
    memory = found[("gateway RSS per idle subscribed socket", "<= 50 KiB")]
    assert memory["met"] is False
    assert memory["verdict"] == "missed by 14.0 KiB (1.3x the limit)"
    assert len(found) == 5


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (None, "ms", "n/a"),
        (0.1234, "ms", "0.12"),
        (123.45, "ms", "123.5"),
        (4999.6, "msg/s", "5,000"),
    ],
)
def test_numbers_are_shown_to_a_useful_precision(value, unit, shown):
    assert headlines.number(value, unit) == shown


def test_report_names_the_command_machine_previous_run_and_parts_left_out():
    result = _result()
    result["skipped"] = {"reads": "bench/reads.py is not there"}

    text = headlines.report(result, _result())

    assert "`python bench/run.py`" in text
    assert "Test CPU, 2 CPUs" in text
    assert "Previous published run: 2026-12-04T18:00:00Z" in text
    assert "Part `reads` has no figures: bench/reads.py is not there" in text
