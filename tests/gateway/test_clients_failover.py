"""The gateway's channels to a service run as several replicas, over real sockets.

A replica killed (SIGKILL) with calls in flight must cost none of the calls that may be repeated:
they are answered by another replica, as are all later calls.
"""

import asyncio
import signal
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.clients import connect
from gateway.config import GatewaySettings

# A replica: a gRPC server with the health service alone, printing its port once it serves.
REPLICA = """
import asyncio
import grpc
from grpc_health.v1 import health, health_pb2_grpc

async def main():
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""
CALLERS = 8


async def _start_replica() -> tuple[asyncio.subprocess.Process, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", REPLICA, stdout=asyncio.subprocess.PIPE
    )
    port = int(await asyncio.wait_for(process.stdout.readline(), 30))
    return process, port


async def test_calls_on_a_killed_replica_are_answered_by_another():
    replicas = [await _start_replica() for _ in range(2)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in replicas)
    clients = await connect(GatewaySettings(ranking_target=target))
    health = health_pb2_grpc.HealthStub(clients.channels["ranking"])
    loop = asyncio.get_running_loop()
    answers: list[str] = []

    async def call_until(end: float) -> None:
        while loop.time() < end:
            try:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=clients.timeout)
                answers.append("OK")
            except grpc.aio.AioRpcError as error:
                answers.append(error.code().name)

    try:
        end = loop.time() + 2.0
        callers = [asyncio.create_task(call_until(end)) for _ in range(CALLERS)]
        await asyncio.sleep(0.5)
        killed_at = len(answers)
        replicas[0][0].send_signal(signal.SIGKILL)
        await asyncio.gather(*callers)
    finally:
        await clients.close()
        for process, _ in replicas:
            if process.returncode is None:
                process.kill()
            await process.wait()

    assert killed_at > 0 and len(answers) > killed_at + CALLERS
    assert set(answers) == {"OK"}
