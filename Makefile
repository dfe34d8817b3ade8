# The two commands a newcomer needs; both set up whatever is missing first.
.PHONY: setup up test bot lint

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
