# The two commands a newcomer needs; both set up whatever is missing first.
.PHONY: setup up test bot lint bench

setup:
	@bash scripts/setup.sh

up: setup
	.venv/bin/python -m devstack up

test: setup
	.venv/bin/pytest -q

bot: setup
	.venv/bin/python -m devstack.bot

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/buf lint

# Every benchmark in one run (bench/run.py); ARGS=--quick for a short one.
bench: setup
	.venv/bin/python bench/run.py $(ARGS)
