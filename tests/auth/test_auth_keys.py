"""Signing keys: loaded from a file or the environment, ES256 or EdDSA, rotated without logouts."""

import json
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from podium.auth.v1 import auth_service_pb2 as pb
from podium.auth.v1 import auth_service_pb2_grpc

from auth.keys import BadKey, KeyRing
from auth.server import running
from auth.tokens import InvalidToken, Tokens

PASSWORD = "keys tests pw"


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def new_key_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "new.pem", _pem(Ed25519PrivateKey.generate()))


@pytest.fixture
async def login(auth_stub, new_username) -> pb.LoginResponse:
    username = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=username, password=PASSWORD))
    return await auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD))


async def test_a_new_signing_key_keeps_every_session_of_the_old_one(
    auth_settings, auth_stub, login, new_key_file, jwt_key_file
):
    """The rotation of keys.py: the new key signs, the old one still verifies, nobody logs out."""
    rotated = auth_settings.model_copy(
        update={
            "jwt_private_key_file": new_key_file,
            "jwt_key_id": "next-1",
            "jwt_verify_keys": {auth_settings.jwt_key_id: str(jwt_key_file)},
        }
    )

    async with running(rotated) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = auth_service_pb2_grpc.AuthServiceStub(ch)
        old = await stub.ValidateToken(pb.ValidateTokenRequest(access_token=login.access_token))
        refreshed = await stub.Refresh(pb.RefreshRequest(refresh_token=login.refresh_token))
        new = await stub.ValidateToken(
            pb.ValidateTokenRequest(access_token=refreshed.access_token)
        )

    assert old.player_id == new.player_id == login.player_id
    assert jwt.get_unverified_header(refreshed.access_token)["kid"] == "next-1"


def test_a_replica_without_the_new_key_refuses_its_tokens(auth_settings, new_key_file):
    """Which is why the new key is added everywhere before anyone signs with it."""
    rotated = auth_settings.model_copy(
        update={"jwt_private_key_file": new_key_file, "jwt_key_id": "next-1"}
    )
    token = Tokens.from_settings(rotated).issue("p", "s" * 32, "name").token

    with pytest.raises(InvalidToken):
        Tokens.from_settings(auth_settings).verify(token)


def test_a_verify_key_may_be_public_pem_text(auth_settings, signing_key, new_key_file):
    settings = auth_settings.model_copy(
        update={
            "jwt_private_key_file": new_key_file,
            "jwt_key_id": "next-1",
            "jwt_verify_keys": {"dev-1": _public_pem(signing_key).decode()},
        }
    )
    old_token = Tokens.from_settings(auth_settings).issue("p", "s" * 32, "name").token

    assert Tokens.from_settings(settings).verify(old_token).player_id == "p"


def test_the_signing_key_may_come_from_the_environment(auth_settings, monkeypatch):
    key = Ed25519PrivateKey.generate()
    monkeypatch.setenv("PODIUM_JWT_PRIVATE_KEY", _pem(key).decode())
    monkeypatch.setenv("PODIUM_JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem")

    tokens = Tokens.from_settings(type(auth_settings)())
    token = tokens.issue("p", "s" * 32, "name").token

    jwt.decode(token, key.public_key(), algorithms=["EdDSA"], audience="podium")


def test_a_p256_key_signs_es256_and_pins_it(auth_settings, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    settings = auth_settings.model_copy(
        update={"jwt_private_key_file": _write(tmp_path / "ec.pem", _pem(key))}
    )
    tokens = Tokens.from_settings(settings)
    token = tokens.issue("p", "s" * 32, "name").token
    claims = jwt.decode(token, options={"verify_signature": False})
    eddsa_forgery = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "dev-1"}
    )

    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert tokens.verify(token).session_key == "s" * 32
    with pytest.raises(InvalidToken):
        tokens.verify(eddsa_forgery)


def test_a_token_may_not_pick_another_algorithm_for_a_kid(auth_settings, tmp_path):
    """An ES256 token naming the EdDSA kid fails, even when signed by a key the ring holds."""
    es_key = ec.generate_private_key(ec.SECP256R1())
    settings = auth_settings.model_copy(
        update={"jwt_verify_keys": {"ec-1": _public_pem(es_key).decode()}}
    )
    tokens = Tokens.from_settings(settings)
    claims = jwt.decode(
        tokens.issue("p", "s" * 32, "name").token, options={"verify_signature": False}
    )

    as_dev = jwt.encode(claims, es_key, algorithm="ES256", headers={"kid": "dev-1"})
    as_ec = jwt.encode(claims, es_key, algorithm="ES256", headers={"kid": "ec-1"})

    with pytest.raises(InvalidToken):
        tokens.verify(as_dev)
    assert tokens.verify(as_ec).player_id == "p"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key",
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        _pem(ec.generate_private_key(ec.SECP384R1())),
    ],
    ids=["empty", "junk", "rsa", "p384"],
)
def test_a_signing_key_we_do_not_sign_with_stops_the_service(auth_settings, tmp_path, content):
    settings = auth_settings.model_copy(
        update={"jwt_private_key_file": _write(tmp_path / "bad.pem", content)}
    )

    with pytest.raises(BadKey):
        KeyRing.from_settings(settings)


@pytest.mark.parametrize("source", ["/nonexistent/old.pem", "-----BEGIN junk"])
def test_an_unreadable_verify_key_stops_the_service(auth_settings, source):
    settings = auth_settings.model_copy(update={"jwt_verify_keys": {"old": source}})

    with pytest.raises(BadKey):
        KeyRing.from_settings(settings)


def test_a_missing_signing_key_file_stops_the_service(auth_settings, tmp_path):
    settings = auth_settings.model_copy(update={"jwt_private_key_file": tmp_path / "none.pem"})

    with pytest.raises(BadKey, match="cannot read key file"):
        KeyRing.from_settings(settings)


def test_verify_keys_come_from_a_json_environment_variable(
    auth_settings, signing_key, jwt_key_file, tmp_path, monkeypatch
):
    public_file = _write(tmp_path / "old.pub.pem", _public_pem(signing_key))
    other = Ed25519PrivateKey.generate()
    sources = {"dev-1": str(public_file), "other-1": _public_pem(other).decode()}
    monkeypatch.setenv("PODIUM_JWT_VERIFY_KEYS", json.dumps(sources))
    monkeypatch.setenv("PODIUM_JWT_PRIVATE_KEY", _pem(Ed25519PrivateKey.generate()).decode())
    monkeypatch.setenv("PODIUM_JWT_KEY_ID", "next-1")

    ring = KeyRing.from_settings(type(auth_settings)())

    assert sorted(ring.verify_keys) == ["dev-1", "next-1", "other-1"]
    old_token = Tokens.from_settings(auth_settings).issue("p", "s" * 32, "name").token
    assert Tokens.from_settings(type(auth_settings)()).verify(old_token).player_id == "p"
