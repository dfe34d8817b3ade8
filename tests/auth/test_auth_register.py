"""Register over gRPC: accepted and refused usernames and passwords, uniqueness, stored hash."""

import asyncio
import re
import unicodedata
import uuid

import grpc
import pytest
from podium.auth.v1 import auth_service_pb2 as pb


async def test_register_creates_account_and_publishes_username(
    auth_stub, new_username, shards, redis_client, names
):
    username = new_username().replace("u_", "Mixed.Case-")

    response = await auth_stub.Register(
        pb.RegisterRequest(username=username, password="s3cret-pw")
    )

    player_id = uuid.UUID(response.player_id)
    row = await shards.for_player(response.player_id).fetchrow(
        "SELECT username, username_key FROM accounts WHERE player_id = $1", player_id
    )
    cached = await redis_client.hget(names.usernames_key, response.player_id)
    assert player_id.version == 4
    assert response.player_id == str(player_id)
    assert (row["username"], row["username_key"]) == (username, username.lower())
    assert cached == username.encode()


async def test_register_refuses_a_taken_username_in_another_case(auth_stub, new_username, refused):
    username = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=username, password="password-1"))

    error = await refused(
        auth_stub.Register(pb.RegisterRequest(username=username.upper(), password="password-2"))
    )

    assert error.status == grpc.StatusCode.ALREADY_EXISTS
    assert (error.code, error.message) == ("USERNAME_TAKEN", "username is taken")


async def test_concurrent_registrations_of_one_name_create_one_account(
    auth_stub, new_username, shards
):
    username = new_username()
    variants = [username, username.upper(), username.title(), username, username.upper()]

    outcomes = await asyncio.gather(
        *(
            auth_stub.Register(pb.RegisterRequest(username=name, password="password-x"))
            for name in variants
        ),
        return_exceptions=True,
    )

    created = [o for o in outcomes if isinstance(o, pb.RegisterResponse)]
    refused_codes = {o.code() for o in outcomes if isinstance(o, grpc.aio.AioRpcError)}
    rows = [
        await pool.fetchval(
            "SELECT count(*) FROM accounts WHERE username_key = $1", username.lower()
        )
        for pool in shards
    ]
    assert len(created) == 1
    assert refused_codes == {grpc.StatusCode.ALREADY_EXISTS}
    assert sum(rows) == 1


@pytest.mark.parametrize(
    "username",
    [
        "",
        "ab",
        "a" * 33,
        "x" * 10_000,
        "has space",
        "at@sign",
        "slash/name",
        "émile",
        "١٢٣٤",
        "tab\tname",
        "trailing\n",
        "nul\x00name",
    ],
    ids=[
        "empty",
        "two_chars",
        "33_chars",
        "10k_chars",
        "space",
        "at_sign",
        "slash",
        "non_ascii_letter",
        "non_ascii_digits",
        "tab",
        "trailing_newline",
        "nul",
    ],
)
async def test_register_refuses_a_bad_username(auth_stub, refused, username):
    error = await refused(
        auth_stub.Register(pb.RegisterRequest(username=username, password="x" * 8))
    )

    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    assert error.code == "INVALID_USERNAME"


@pytest.mark.parametrize(
    "username", ["a_3", "Edge_" + "x" * 27, "a.b-c_D9"], ids=["3_chars", "32_chars", "punctuation"]
)
async def test_register_accepts_usernames_at_the_edges(auth_stub, username):
    """Each session has a fresh database, so these fixed names are free."""
    response = await auth_stub.Register(pb.RegisterRequest(username=username, password="x" * 8))

    assert uuid.UUID(response.player_id)


@pytest.mark.parametrize(
    "password",
    [
        "",
        "p" * 7,
        "p" * 129,
        "p" * 10_000,
        "pass\x00word",
        "pass\x1bword",
        "password\n",
        "del\x7fword",
    ],
    ids=["empty", "7_chars", "129_chars", "10k_chars", "nul", "escape", "newline", "delete"],
)
async def test_register_refuses_a_bad_password(auth_stub, new_username, refused, password):
    request = pb.RegisterRequest(username=new_username(), password=password)

    error = await refused(auth_stub.Register(request))

    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    assert error.code == "INVALID_PASSWORD"


@pytest.mark.parametrize(
    "password",
    ["p" * 8, "p" * 128, "é" * 100, "😀" * 8, "pass word with spaces"],
    ids=["8_chars", "128_chars", "100_two_byte_chars", "8_four_byte_chars", "spaces"],
)
async def test_register_accepts_a_password_that_then_logs_in(auth_stub, new_username, password):
    username = new_username()

    registered = await auth_stub.Register(pb.RegisterRequest(username=username, password=password))
    logged_in = await auth_stub.Login(pb.LoginRequest(username=username, password=password))

    assert logged_in.player_id == registered.player_id


async def test_password_is_never_truncated(auth_stub, new_username, refused):
    username = new_username()
    password = "q" * 127 + "1"
    await auth_stub.Register(pb.RegisterRequest(username=username, password=password))

    error = await refused(
        auth_stub.Login(pb.LoginRequest(username=username, password="q" * 127 + "2"))
    )

    assert error.code == "INVALID_CREDENTIALS"


async def test_stored_hash_is_argon2id_with_the_configured_parameters(
    auth_stub, new_username, shards, auth_settings
):
    password = "correct horse"

    response = await auth_stub.Register(
        pb.RegisterRequest(username=new_username(), password=password)
    )

    stored = await shards.for_player(response.player_id).fetchval(
        "SELECT password_hash FROM accounts WHERE player_id = $1", uuid.UUID(response.player_id)
    )
    parsed = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored)
    assert parsed is not None
    assert tuple(map(int, parsed.groups())) == (
        auth_settings.argon2_memory_kib,
        auth_settings.argon2_time_cost,
        auth_settings.argon2_parallelism,
    )
    assert password not in stored


async def test_a_73_character_password_differs_from_its_72_character_twin(
    auth_stub, new_username, refused
):
    """bcrypt would see one password here (it reads 72 bytes); argon2id reads them all."""
    username, twin = new_username(), "t" * 72
    await auth_stub.Register(pb.RegisterRequest(username=username, password=twin + "X"))

    error = await refused(auth_stub.Login(pb.LoginRequest(username=username, password=twin)))
    logged_in = await auth_stub.Login(pb.LoginRequest(username=username, password=twin + "X"))

    assert error.code == "INVALID_CREDENTIALS"
    assert logged_in.access_token


async def test_a_password_is_its_unicode_text_not_its_encoding(auth_stub, new_username):
    """Composed and decomposed forms of one text (NFC) are one password, as typed on any OS."""
    username = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=username, password="caf\u00e9 au lait"))

    decomposed = pb.LoginRequest(username=username, password="cafe\u0301 au lait")
    logged_in = await auth_stub.Login(decomposed)

    assert logged_in.access_token


async def test_characters_are_counted_after_normalization(auth_stub, new_username, refused):
    """128 decomposed é are 256 code points but 128 characters: accepted as 128."""
    accepted = await auth_stub.Register(
        pb.RegisterRequest(username=new_username(), password="e\u0301" * 128)
    )
    error = await refused(
        auth_stub.Register(pb.RegisterRequest(username=new_username(), password="e\u0301" * 129))
    )

    assert accepted.player_id
    assert error.code == "INVALID_PASSWORD"


async def test_a_long_input_is_refused_however_much_it_would_compose(
    auth_stub, new_username, refused
):
    """U+1F82 is four code points decomposed: 128 of them are 512 code points, the most any
    valid password can arrive as; one more code point is refused, not cut off."""
    decomposed = unicodedata.normalize("NFD", "\u1f82") * 128
    username = new_username()

    await auth_stub.Register(pb.RegisterRequest(username=username, password=decomposed))
    error = await refused(
        auth_stub.Register(pb.RegisterRequest(username=new_username(), password=decomposed + "X"))
    )
    composed = pb.LoginRequest(username=username, password="\u1f82" * 128)
    longer = pb.LoginRequest(username=username, password=decomposed + "X" * 1000)

    assert error.code == "INVALID_PASSWORD"
    assert (await auth_stub.Login(composed)).access_token
    assert (await refused(auth_stub.Login(longer))).code == "INVALID_CREDENTIALS"
