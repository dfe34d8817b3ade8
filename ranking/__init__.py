"""Ranking service: reads and streams leaderboards from Redis, rebuilds them from Postgres."""
