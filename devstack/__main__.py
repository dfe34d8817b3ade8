"""python -m devstack up: set up and run the whole system on this machine."""

import argparse
import sys

import uvloop
from pydantic import ValidationError

from devstack.config import StackSettings, problems
from devstack.up import run
from infra.logs import configure_logging


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["up"], help="start every service until Ctrl-C")
    parser.parse_args()

    try:
        settings = StackSettings()
    except ValidationError as error:
        # A line per mistake, naming its variable, instead of a traceback.
        for line in problems(error):
            print(f"Podium cannot start: {line}", file=sys.stderr)
        return 2
    configure_logging("devstack", settings.log_level)
    return uvloop.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
