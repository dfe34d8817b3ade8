"""Player and action ids as text: the canonical 8-4-4-4-12 form only, in either case.

uuid.UUID alone would also take braces, a "urn:uuid:" prefix, missing hyphens and non-ASCII
digits ("١" parses as 1), so two spellings a client sees as different could name one id.
"""

import re

_UUID_TEXT = re.compile("-".join(f"[0-9a-fA-F]{{{n}}}" for n in (8, 4, 4, 4, 12)))


def is_uuid_text(text: str) -> bool:
    return _UUID_TEXT.fullmatch(text) is not None


def canonical_uuid(text: str) -> str:
    """The lower-case form of a UUID's canonical text; ValueError for anything else."""
    if not is_uuid_text(text):
        raise ValueError("not the canonical text of a UUID")
    return text.lower()
