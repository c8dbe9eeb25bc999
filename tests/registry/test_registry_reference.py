"""Image references: parsing, formatting, and one-line errors for what cannot be pushed to."""

from __future__ import annotations

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.registry.reference import Reference, parse_reference, split_repository

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, expected",
    [
        ("localhost:5000/images/static", Reference("localhost:5000", "images/static")),
        ("127.0.0.1:5000/a/b/c:v1.2-rc_3", Reference("127.0.0.1:5000", "a/b/c", "v1.2-rc_3")),
        (f"ghcr.io/org/app@{DIGEST}", Reference("ghcr.io", "org/app", None, DIGEST)),
        (f"registry.example:443/x:latest@{DIGEST}", Reference("registry.example:443", "x", "latest", DIGEST)),
        ("localhost/app", Reference("localhost", "app")),
    ],
)
def test_parse_and_format_round_trip(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected
    assert str(expected) == text


def test_name_and_variants() -> None:
    ref = parse_reference("localhost:5000/images/static:latest")
    assert ref.name == "localhost:5000/images/static"
    assert str(ref.with_digest(DIGEST)) == f"localhost:5000/images/static@{DIGEST}"
    assert str(ref.with_tag("v2")) == "localhost:5000/images/static:v2"


@pytest.mark.parametrize(
    "text, message",
    [
        ("images/static", "does not start with a registry: write HOST[:PORT]/REPOSITORY"),
        ("static", "does not start with a registry"),
        ("localhost:5000/Images/Static", "is not a valid repository name"),
        ("localhost:5000/a//b", "is not a valid repository name"),
        ("localhost:5000/a:-bad", "is not a valid tag"),
        ("localhost:5000/a@sha256:abc", "is not a sha256 digest"),
    ],
)
def test_bad_references_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(OciBuildError) as error:
        parse_reference(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_split_repository() -> None:
    assert split_repository("my.registry:5000/team/app") == ("my.registry:5000", "team/app")
