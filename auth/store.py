"""Player accounts in Postgres: the only durable record of who may log in.

An account lives on the database of its username's logical shard, and its player id carries
that shard, so a lookup by name and a lookup by id reach the same database, and two spellings
of one name meet on the one database whose unique index can refuse the second.
"""

from dataclasses import dataclass

import asyncpg

from infra.shards import ShardPools, new_player_id, shard_of_username

_USERNAME_CONSTRAINT = "accounts_username_key_key"


class UsernameTaken(Exception):
    """Another account already holds this username, compared case-insensitively."""


@dataclass(frozen=True)
class Account:
    """What login needs to know about an account."""

    player_id: str
    username: str
    password_hash: str
    banned: bool


def username_key(username: str) -> str:
    """The form a username is compared in (names are ASCII, so lower() is the whole fold)."""
    return username.lower()


class Accounts:
    """Reads and writes rows of the accounts table on every shard database."""

    def __init__(self, pools: ShardPools) -> None:
        self._pools = pools

    async def insert(self, username: str, password_hash: str) -> str:
        """Create the account and return its new player id; UsernameTaken if the name is used.

        The unique index decides, so two concurrent registrations of one name cannot both
        succeed the way a check followed by an insert could.
        """
        key = username_key(username)
        player_id = new_player_id(shard_of_username(key))
        try:
            await self._pools.for_username(key).execute(
                "INSERT INTO accounts (player_id, username, username_key, password_hash)"
                " VALUES ($1, $2, $3, $4)",
                player_id,
                username,
                key,
                password_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _USERNAME_CONSTRAINT:
                raise UsernameTaken(username) from exc
            raise
        return player_id

    async def find(self, username: str) -> Account | None:
        """The account whose username equals this one, ignoring case."""
        key = username_key(username)
        row = await self._pools.for_username(key).fetchrow(
            "SELECT player_id, username, password_hash, banned_at IS NOT NULL AS banned"
            " FROM accounts WHERE username_key = $1",
            key,
        )
        if row is None:
            return None
        return Account(str(row["player_id"]), row["username"], row["password_hash"], row["banned"])

    async def is_banned(self, player_id: str) -> bool:
        return bool(
            await self._pools.for_player(player_id).fetchval(
                "SELECT banned_at IS NOT NULL FROM accounts WHERE player_id = $1", player_id
            )
        )

    async def set_banned(self, player_id: str, banned: bool) -> bool:
        """Ban or unban the player; False if no such account exists."""
        status = await self._pools.for_player(player_id).execute(
            "UPDATE accounts SET banned_at = CASE WHEN $2 THEN coalesce(banned_at, now()) END"
            " WHERE player_id = $1",
            player_id,
            banned,
        )
        return status == "UPDATE 1"

    async def replace_password_hash(self, player_id: str, password_hash: str) -> None:
        """Store a hash made with newer parameters for the same password."""
        await self._pools.for_player(player_id).execute(
            "UPDATE accounts SET password_hash = $2 WHERE player_id = $1",
            player_id,
            password_hash,
        )
