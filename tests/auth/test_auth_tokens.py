"""ValidateToken over gRPC: genuine tokens pass; forged, stale or foreign ones do not.

Each forgery starts from the claims of a live session, so the one fault it carries is the only
reason it can be refused.
"""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from podium.auth.v1 import auth_service_pb2 as pb

PASSWORD = "token tests pw"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict, sign: Callable[[bytes], bytes]) -> str:
    """Build a JWT by hand, for algorithms PyJWT refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


@pytest.fixture
async def session(auth_stub, new_username, auth_settings) -> dict:
    """Claims of a freshly opened session, as our own issuer would write them."""
    username = new_username()
    await auth_stub.Register(pb.RegisterRequest(username=username, password=PASSWORD))
    login = await auth_stub.Login(pb.LoginRequest(username=username, password=PASSWORD))
    issued = jwt.decode(login.access_token, options={"verify_signature": False})
    now = int(time.time())
    return {
        "sub": issued["sub"],
        "sid": issued["sid"],
        "name": issued["name"],
        "iss": auth_settings.jwt_issuer,
        "aud": auth_settings.jwt_audience,
        "iat": now,
        "exp": now + 300,
        "jti": "test-jti",
        "token": login.access_token,
    }


def _sign(key: Ed25519PrivateKey, claims: dict, kid: str = "dev-1", **changes) -> str:
    body = {k: v for k, v in {**claims, **changes}.items() if k != "token" and v is not None}
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": kid})


def _other_key(key, claims, kid):
    return _sign(Ed25519PrivateKey.generate(), claims, kid)


def _alg_none(key, claims, kid):
    body = {k: v for k, v in claims.items() if k != "token"}
    return _compact({"alg": "none", "typ": "JWT", "kid": kid}, body, lambda _: b"")


def _hs256_with_public_key(key, claims, kid):
    secret = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = {k: v for k, v in claims.items() if k != "token"}
    return _compact(
        {"alg": "HS256", "typ": "JWT", "kid": kid},
        body,
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


def _expired(key, claims, kid):
    now = int(time.time())
    return _sign(key, claims, kid, iat=now - 2000, exp=now - 1000)


def _wrong_audience(key, claims, kid):
    return _sign(key, claims, kid, aud="someone-else")


def _wrong_issuer(key, claims, kid):
    return _sign(key, claims, kid, iss="evil-auth")


def _unknown_kid(key, claims, kid):
    return _sign(key, claims, kid + "-other")


def _no_kid(key, claims, kid):
    body = {k: v for k, v in claims.items() if k != "token"}
    return jwt.encode(body, key, algorithm="EdDSA")


def _no_session_claim(key, claims, kid):
    return _sign(key, claims, kid, sid=None)


def _no_expiry(key, claims, kid):
    return _sign(key, claims, kid, exp=None)


def _tampered_subject(key, claims, kid):
    header, _, signature = claims["token"].split(".")
    payload = jwt.decode(claims["token"], options={"verify_signature": False})
    payload["sub"] = "00000000-0000-4000-8000-000000000000"
    return f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"


def _malformed(key, claims, kid):
    return "not-a.jwt"


def _empty(key, claims, kid):
    return ""


def _padded(key, claims, kid):
    """The decoder would accept base64 padding; the token's one spelling has none."""
    return claims["token"] + "=="


def _padded_payload(key, claims, kid):
    header, payload, signature = claims["token"].split(".")
    return f"{header}.{payload}{'=' * (-len(payload) % 4) or '=='}.{signature}"


def _oversized(key, claims, kid):
    return claims["token"] + "A" * 10_000


FORGERIES = [
    _other_key,
    _alg_none,
    _hs256_with_public_key,
    _expired,
    _wrong_audience,
    _wrong_issuer,
    _unknown_kid,
    _no_kid,
    _no_session_claim,
    _no_expiry,
    _tampered_subject,
    _malformed,
    _empty,
    _padded,
    _padded_payload,
    _oversized,
]


async def test_validate_returns_the_session_behind_a_login_token(auth_stub, session):
    response = await auth_stub.ValidateToken(
        pb.ValidateTokenRequest(access_token=session["token"])
    )

    issued = jwt.decode(session["token"], options={"verify_signature": False})
    assert response.player_id == session["sub"]
    assert response.session_key == session["sid"]
    assert response.username == session["name"]
    assert response.expires_at_unix == issued["exp"]


async def test_validate_accepts_a_token_built_like_the_forgeries_but_sound(
    auth_stub, session, signing_key, auth_settings
):
    """The control for the forgeries below: the helpers alone do not make a token fail."""
    token = _sign(signing_key, session, auth_settings.jwt_key_id)

    response = await auth_stub.ValidateToken(pb.ValidateTokenRequest(access_token=token))

    assert response.session_key == session["sid"]
    assert response.expires_at_unix == session["exp"]


@pytest.mark.parametrize("forge", FORGERIES, ids=[f.__name__.lstrip("_") for f in FORGERIES])
async def test_validate_refuses_a_forged_or_foreign_token(
    auth_stub, session, signing_key, auth_settings, refused, forge
):
    token = forge(signing_key, session, auth_settings.jwt_key_id)

    error = await refused(auth_stub.ValidateToken(pb.ValidateTokenRequest(access_token=token)))

    assert error.status == grpc.StatusCode.UNAUTHENTICATED
    assert (error.code, error.message) == ("INVALID_TOKEN", "invalid access token")


async def test_validate_reports_an_ended_session_once_its_hash_is_gone(
    auth_stub, session, redis_client, names, refused
):
    request = pb.ValidateTokenRequest(access_token=session["token"])
    await auth_stub.ValidateToken(request)

    await redis_client.delete(names.session_key(session["sid"]))
    error = await refused(auth_stub.ValidateToken(request))

    assert error.status == grpc.StatusCode.UNAUTHENTICATED
    assert (error.code, error.message) == ("SESSION_ENDED", "session has ended")
