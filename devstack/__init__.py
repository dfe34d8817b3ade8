"""Run the whole system on one machine, and a bot that plays it."""
