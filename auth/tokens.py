"""Signed access tokens: JWTs (EdDSA or ES256) that carry the player and the session.

Verification trusts nothing in the token before its signature is checked: the header's kid must
name a configured key, and that key alone decides the algorithm.
"""

import re
import secrets
import time
from dataclasses import dataclass

import jwt

from auth.config import AuthSettings
from auth.keys import KeyRing

# Tokens we issue are under 500 characters; anything far longer is refused unparsed.
MAX_TOKEN_CHARS = 2048
# JWS compact form, unpadded base64url (RFC 7515): the decoder would also take padding and
# so give one token several spellings, which a cache or deny-list keyed on the text would miss.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid"]
# Replicas' clocks may differ a little; a token is not refused for being seconds early or late.
CLOCK_SKEW_SECONDS = 5


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


class Tokens:
    """Issue access tokens with the ring's signing key; verify them with any key of the ring."""

    def __init__(self, ring: KeyRing, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._ring = ring
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> "Tokens":
        return cls(
            KeyRing.from_settings(settings),
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
        ring = self._ring
        token = jwt.encode(
            claims,
            ring.signing_key,
            algorithm=ring.signing_algorithm,
            headers={"kid": ring.signing_kid},
        )
        return IssuedToken(token, expires_at)

    def verify(self, token: str, allow_expired: bool = False) -> AccessClaims:
        """Return the token's claims, or raise InvalidToken for any fault in it.

        Logout passes allow_expired: ending a session needs proof of holding it, not a live
        token, or a player whose token just lapsed could not log out.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("size")
        if not _COMPACT.fullmatch(token):
            raise InvalidToken("form")

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._ring.verify_keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidToken("kid")
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": _REQUIRED_CLAIMS, "verify_exp": not allow_expired},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc

        texts = (claims["sub"], claims["sid"], claims.get("name"))
        if not all(isinstance(text, str) for text in texts) or type(claims["exp"]) is not int:
            raise InvalidToken("claims")
        return AccessClaims(*texts, expires_at=claims["exp"])
