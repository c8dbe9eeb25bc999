"""The core's one validator of JSON/YAML input (ocibuild.common.validate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import pytest
from ocibuild.common.validate import NonEmptyStr, decode
from ocibuild.errors import OciBuildError


@dataclass(frozen=True)
class _Range:
    low: int
    high: int

    def invalid_reason(self) -> Optional[str]:
        return None if self.low <= self.high else "must have low <= high"


@dataclass(frozen=True)
class _Port:
    number: int

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        return None if 0 < self.number < 65536 else ("number", f"{self.number} is not a port")


@dataclass(frozen=True)
class _Doc:
    ranges: Tuple[_Range, ...] = ()
    ports: Tuple[_Port, ...] = ()


def test_a_records_reason_names_the_record():
    with pytest.raises(OciBuildError) as e:
        decode(_Doc, {"ranges": [{"low": 1, "high": 2}, {"low": 3, "high": 2}]}, "f.json")
    assert str(e.value) == "f.json: `ranges[1]` must have low <= high"


def test_a_reason_with_a_key_names_the_keys_path():
    with pytest.raises(OciBuildError) as e:
        decode(_Doc, {"ports": [{"number": 0}]}, "f.json")
    assert str(e.value) == "f.json: `ports[0].number` 0 is not a port"


def test_valid_records_decode():
    assert decode(_Doc, {"ports": [{"number": 80}]}, "f.json") == _Doc(ports=(_Port(80),))


@dataclass(frozen=True)
class _Named:
    name: NonEmptyStr
    aliases: Tuple[NonEmptyStr, ...] = ()


def test_non_empty_strings():
    assert decode(_Named, {"name": "a", "aliases": ["b"]}, "f.json") == _Named(
        NonEmptyStr("a"), (NonEmptyStr("b"),)
    )
    with pytest.raises(OciBuildError) as e:
        decode(_Named, {"name": ""}, "f.json")
    assert str(e.value) == "f.json: `name` must be a non-empty string, got ''"
    with pytest.raises(OciBuildError) as e:
        decode(_Named, {"name": "a", "aliases": 1}, "f.json")
    assert str(e.value) == "f.json: `aliases` must be a list of non-empty strings, got 1"


def test_one_digest_check_refuses_a_trailing_newline() -> None:
    from ocibuild.common.digests import is_sha256_digest

    good = "sha256:" + "a" * 64
    assert is_sha256_digest(good)
    assert not is_sha256_digest(good + "\n")
    assert not is_sha256_digest(good.upper().replace("SHA256", "sha256"))
    assert not is_sha256_digest(None)
