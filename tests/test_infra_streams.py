"""How many NATS servers keep the actions streams is the deployment's setting, on every start."""

import contextlib
import uuid

import pytest
from nats.js.errors import APIError, NotFoundError

from infra.names import Names
from infra.streams import ensure_actions_stream


@pytest.fixture
async def own_names(nats_client):
    """A namespace of the test's own, so that its streams can be made and dropped freely."""
    names = Names("s" + uuid.uuid4().hex[:10])
    yield names

    js = nats_client.jetstream()
    for stream in (names.actions_stream, names.dead_letters_stream):
        # A refused stream was never made: there is nothing to delete.
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)


async def test_streams_get_the_replicas_asked_for(nats_client, own_names):
    js = nats_client.jetstream()

    await ensure_actions_stream(js, own_names, replicas=1)
    actions = await js.stream_info(own_names.actions_stream)
    dead = await js.stream_info(own_names.dead_letters_stream)

    assert actions.config.num_replicas == dead.config.num_replicas == 1


async def test_more_replicas_than_the_servers_there_are_is_refused_not_ignored(
    nats_client, own_names
):
    """The machine's NATS is a single server: asking it for three copies must fail at start,
    never quietly leave the stream on one server."""
    js = nats_client.jetstream()

    with pytest.raises(APIError) as refused:
        await ensure_actions_stream(js, own_names, replicas=3)

    assert "replica" in str(refused.value).lower()
