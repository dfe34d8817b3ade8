"""Signed access tokens: EdDSA (Ed25519) JWTs that carry the player and the session.

Verification trusts nothing in the token before its signature is checked: the algorithm is
pinned, and the header's kid may only name the one configured key.
"""

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.config import AuthSettings

ALGORITHM = "EdDSA"
# Tokens we issue are under 500 characters; anything far longer is refused unparsed.
MAX_TOKEN_CHARS = 2048
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid"]


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for someone else."""


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    player_id: str
    session_key: str
    username: str
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    """A fresh access token and when it expires, in Unix seconds."""

    token: str
    expires_at: int


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the PEM signing key; a key of another type stops the service at boot."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


class Tokens:
    """Issue and verify access tokens with one key, issuer, audience and lifetime."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        key_id: str,
        issuer: str,
        audience: str,
        ttl_seconds: int,
    ) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self._key_id = key_id
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> "Tokens":
        return cls(
            load_private_key(settings.jwt_private_key_file),
            settings.jwt_key_id,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.access_ttl_seconds,
        )

    def issue(self, player_id: str, session_key: str, username: str) -> IssuedToken:
        """Sign a token for the session, valid for the configured lifetime from now."""
        issued_at = int(time.time())
        expires_at = issued_at + self.ttl_seconds
        claims = {
            "sub": player_id,
            "sid": session_key,
            "name": username,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": issued_at,
            "exp": expires_at,
            "jti": secrets.token_hex(16),
        }
        token = jwt.encode(
            claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self._key_id}
        )
        return IssuedToken(token, expires_at)

    def verify(self, token: str) -> AccessClaims:
        """Return the token's claims, or raise InvalidToken for any fault in it."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("size")

        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self._key_id:
                raise InvalidToken("kid")
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc

        texts = (claims["sub"], claims["sid"], claims.get("name"))
        if not all(isinstance(text, str) for text in texts) or type(claims["exp"]) is not int:
            raise InvalidToken("claims")
        return AccessClaims(*texts, expires_at=claims["exp"])
