"""A gRPC server refuses a port another server holds, instead of sharing it."""

import pytest

from infra.grpc_server import start_server


async def test_a_second_server_on_a_taken_port_is_refused():
    """With SO_REUSEPORT (gRPC's default) both would serve and the kernel would split clients
    between them: two stacks on one machine would answer each other's players."""
    first, port, health = await start_server("127.0.0.1:0", lambda server: [])
    try:
        with pytest.raises(RuntimeError, match=f"Failed to bind to address 127.0.0.1:{port}"):
            await start_server(f"127.0.0.1:{port}", lambda server: [])
    finally:
        await health.enter_graceful_shutdown()
        await first.stop(0)
