"""The ranking service's Prometheus metrics beyond the per-RPC ones every service has."""

from prometheus_client import Counter, Gauge, Histogram

WATCHERS = Gauge(
    "podium_ranking_watchers",
    "Open WatchBoard streams of a board (each gateway holds one per board it serves).",
    ["board"],
)
REBUILDS = Counter(
    "podium_ranking_rebuilds",
    "Board period rebuilds from Postgres: done, joined (another process was rebuilding it and "
    "this one waited for it), or failed.",
    ["outcome"],
)
REBUILDS_DONE = REBUILDS.labels("done")
REBUILDS_JOINED = REBUILDS.labels("joined")
REBUILDS_FAILED = REBUILDS.labels("failed")
REBUILD_SECONDS = Histogram(
    "podium_ranking_rebuild_seconds",
    "Time to rebuild a board period from Postgres, for rebuilds done here.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
