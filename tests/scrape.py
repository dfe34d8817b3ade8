"""Read a process's metrics as Prometheus does: GET /metrics, parsed from the text format."""

import asyncio
import socket
from collections.abc import Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """The samples of one scrape, summed over the labels a question leaves out."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def labels(self, name: str, label: str) -> set[str]:
        """Every value `label` takes among the samples named `name`."""
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


async def scrape(url: str) -> Scrape:
    """Scrape `url` (a /metrics address on 127.0.0.1)."""
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        assert reply.status == 200, await reply.text()
        return Scrape(await reply.text())


async def scrape_until(url: str, done: Callable[[Scrape], bool], seconds: float = 20.0) -> Scrape:
    """Scrape until `done(scrape)` holds, for what is counted after the answer a test awaits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not done(scraped := await scrape(url)):
        assert loop.time() < deadline, "the metrics never got there"
        await asyncio.sleep(0.05)
    return scraped


def metrics_port() -> int:
    """A free port on 127.0.0.1 for a metrics endpoint, whose port 0 means "serve none"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
