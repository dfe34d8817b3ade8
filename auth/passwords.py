"""Argon2id hashing of passwords, run off the event loop with a cap on concurrent runs.

Each run holds argon2_memory_kib of memory and a CPU for tens of milliseconds, so an
unbounded burst of logins could exhaust memory or starve the loop; the semaphore caps both.
"""

import asyncio
import os
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError

DEFAULT_MAX_CONCURRENT = os.cpu_count() or 1


class Passwords:
    """Hash and verify passwords with one fixed set of argon2id parameters."""

    def __init__(
        self,
        memory_kib: int,
        time_cost: int,
        parallelism: int,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        # Checked when a username is unknown, so that such a login costs what a wrong
        # password costs and its timing does not reveal which usernames exist.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    async def hash(self, password: str) -> str:
        """Return the encoded argon2id hash of the password, with a fresh salt."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded_hash: str, password: str) -> bool:
        """Whether the password matches the stored hash."""
        async with self._slots:
            return await asyncio.to_thread(self._matches, encoded_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a verification for a login whose username does not exist."""
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, encoded_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(encoded_hash)

    def _matches(self, encoded_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded_hash, password)
        except VerifyMismatchError:
            return False
