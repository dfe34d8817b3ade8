"""Player accounts in Postgres: the only durable record of who may log in."""

from dataclasses import dataclass

import asyncpg

_USERNAME_CONSTRAINT = "accounts_username_key_key"


class UsernameTaken(Exception):
    """Another account already holds this username, compared case-insensitively."""


@dataclass(frozen=True)
class Account:
    """What login needs to know about an account."""

    player_id: str
    username: str
    password_hash: str


class Accounts:
    """Reads and writes rows of the accounts table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, player_id: str, username: str, password_hash: str) -> None:
        """Create the account; raise UsernameTaken if the lower-cased name is in use.

        The unique index decides, so two concurrent registrations of one name cannot both
        succeed the way a check followed by an insert could.
        """
        try:
            await self._pool.execute(
                "INSERT INTO accounts (player_id, username, username_key, password_hash)"
                " VALUES ($1, $2, $3, $4)",
                player_id,
                username,
                username.lower(),
                password_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _USERNAME_CONSTRAINT:
                raise UsernameTaken(username) from exc
            raise

    async def find(self, username: str) -> Account | None:
        """The account whose username equals this one, ignoring case."""
        row = await self._pool.fetchrow(
            "SELECT player_id, username, password_hash FROM accounts WHERE username_key = $1",
            username.lower(),
        )
        if row is None:
            return None
        return Account(str(row["player_id"]), row["username"], row["password_hash"])

    async def replace_password_hash(self, player_id: str, password_hash: str) -> None:
        """Store a hash made with newer parameters for the same password."""
        await self._pool.execute(
            "UPDATE accounts SET password_hash = $2 WHERE player_id = $1",
            player_id,
            password_hash,
        )
