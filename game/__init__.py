"""Game workers: apply each player action exactly once to Postgres, then update Redis."""
