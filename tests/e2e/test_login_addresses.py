"""Login throttling per client address behind one trusted proxy, through the whole stack."""

import uuid

from devstack.client import PlayerClient

PASSWORD = "correct horse battery"
STACK_ENV = {"PODIUM_TRUSTED_PROXY_HOPS": "1", "PODIUM_LOGIN_FAILURES_PER_ADDRESS": "3"}


async def _login_status(http, stack, username: str, password: str, forwarded: str) -> int:
    body = {"username": username, "password": password}
    headers = {"X-Forwarded-For": forwarded}
    async with http.post(stack.url + "/v1/auth/login", json=body, headers=headers) as reply:
        return reply.status


async def test_failures_lock_out_the_address_the_proxy_saw_and_no_other(http, stack):
    victim = "v" + uuid.uuid4().hex[:12]
    await PlayerClient(http, stack.url).register(victim, PASSWORD)
    # The client forged the first entry; the proxy appended the address it really saw.
    attacker = "6.6.6.6, 203.0.113.9"

    failures = [
        await _login_status(http, stack, "g" + uuid.uuid4().hex[:12], PASSWORD, attacker)
        for _ in range(3)
    ]

    assert failures == [401, 401, 401]
    assert await _login_status(http, stack, victim, PASSWORD, "203.0.113.9") == 429
    assert await _login_status(http, stack, victim, PASSWORD, "6.6.6.6, 198.51.100.1") == 200
