"""The keys auth signs access tokens with, and the ones it still accepts while keys rotate.

Each key's algorithm follows from its type (Ed25519 -> EdDSA, P-256 -> ES256) and is pinned to
its kid, so a token can never choose how it is checked. Rotation: add the new key to every
replica as a verify key, then make it the signing key and keep the old one as a verify key
until the last token it signed has expired.
"""

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auth.config import AuthSettings

_PEM_START = "-----BEGIN"


class BadKey(ValueError):
    """A configured key is missing, unreadable or of a type we do not sign with."""


@dataclass(frozen=True)
class VerifyKey:
    """A public key and the one algorithm tokens naming its kid must use."""

    public_key: Ed25519PublicKey | ec.EllipticCurvePublicKey
    algorithm: str


@dataclass(frozen=True)
class KeyRing:
    """The signing key, and every key (the signing one included) a token may be checked with."""

    signing_kid: str
    signing_key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    signing_algorithm: str
    verify_keys: dict[str, VerifyKey]

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> "KeyRing":
        if settings.jwt_private_key is not None:
            pem = settings.jwt_private_key.get_secret_value().encode()
        else:
            pem = _read(settings.jwt_private_key_file)
        signing_key = _private_key(pem)
        signing = _verify_key(signing_key.public_key())

        verify_keys = {}
        for kid, source in settings.jwt_verify_keys.items():
            text = source.encode() if source.startswith(_PEM_START) else _read(Path(source))
            verify_keys[kid] = _verify_key(_public_key(text))
        verify_keys[settings.jwt_key_id] = signing
        return cls(settings.jwt_key_id, signing_key, signing.algorithm, verify_keys)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadKey(f"cannot read key file {path}: {exc.strerror}") from None


def _private_key(pem: bytes):
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"not an unencrypted PEM private key: {exc}") from None


def _public_key(pem: bytes):
    """A verify key may be given as its public key or as the old private key itself."""
    try:
        if b"PRIVATE KEY" in pem:
            return _private_key(pem).public_key()
        return serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"not a PEM public key: {exc}") from None


def _verify_key(public_key) -> VerifyKey:
    if isinstance(public_key, Ed25519PublicKey):
        return VerifyKey(public_key, "EdDSA")
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1":
        return VerifyKey(public_key, "ES256")
    raise BadKey("keys must be Ed25519 (EdDSA) or P-256 (ES256)")
