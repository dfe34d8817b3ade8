"""Ids are taken only in their canonical text, so one id has one spelling (up to case)."""

import pytest

from infra.ids import canonical_uuid

ID = "0b6a4d0e-2f55-4c1e-a7a3-6f7c1a2b9d10"


@pytest.mark.parametrize("text", [ID, ID.upper()], ids=["lower", "upper"])
def test_the_canonical_text_in_either_case_is_an_id(text):
    assert canonical_uuid(text) == ID


@pytest.mark.parametrize(
    "text",
    [
        "",
        ID.replace("-", ""),
        "{" + ID + "}",
        "urn:uuid:" + ID,
        ID + "\n",
        " " + ID,
        "\u0661" * 8 + ID[8:],
        ID[:-1] + "g",
        ID[:-1],
    ],
    ids=[
        "empty",
        "no_hyphens",
        "braces",
        "urn",
        "trailing_newline",
        "leading_space",
        "arabic_indic_digits",
        "not_hex",
        "short",
    ],
)
def test_every_other_spelling_is_refused(text):
    with pytest.raises(ValueError):
        canonical_uuid(text)
