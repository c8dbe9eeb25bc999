"""ocibuild.strictload: JSON and YAML that refuse a duplicate key, naming the key and its line."""

from __future__ import annotations

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.strictload import load_json, load_yaml


def _error(load, text: str) -> str:
    with pytest.raises(OciBuildError) as e:
        load(text, "in/file")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("in/file: ")
    return msg


# ---- JSON ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ('{"a": 1, "b": {"a": 2, "c": {"a": 3}}}', {"a": 1, "b": {"a": 2, "c": {"a": 3}}}),
        ('[{"k": 1}, {"k": 2}, {"k": [{"k": 3}]}]', [{"k": 1}, {"k": 2}, {"k": [{"k": 3}]}]),
        (
            '{"users": [{"username": "a"}, {"username": "b"}]}',
            {"users": [{"username": "a"}, {"username": "b"}]},
        ),
        ('{"a": "\\"a\\": 1, ", "b": "{\\"a\\": 2}"}', {"a": '"a": 1, ', "b": '{"a": 2}'}),
        ('{"A": 1, "a": 2}', {"A": 1, "a": 2}),
        ("[]", []),
        ('"text"', "text"),
    ],
    ids=[
        "nested-objects",
        "array-of-objects",
        "equal-keys-in-siblings",
        "keys-inside-strings",
        "case",
        "empty",
        "scalar",
    ],
)
def test_json_without_duplicates_loads_like_json(text: str, value) -> None:
    assert load_json(text, "in/file") == value


@pytest.mark.parametrize(
    "text, key, line",
    [
        ('{"a": 1,\n "b": 2,\n "a": 3}', "a", 3),
        ('{"outer": {\n  "k": 1,\n  "x": {"k": 5},\n  "k": 2}}', "k", 4),
        ('[{"k": 1},\n {"k": 2},\n {"k": 3,\n  "j": 4, "k": 5}]', "k", 4),
        ('{"s": "}\\",{\\"s\\": 1",\n "t": [1, {"s": 1}],\n "s": 2}', "s", 3),
        ('{"a": {"b": 1,\n\n "b": {}}}', "b", 3),
    ],
    ids=["top-level", "nested-object", "array-of-objects", "strings-and-nesting-skipped", "blank-lines"],
)
def test_json_duplicate_key_names_key_and_line(text: str, key: str, line: int) -> None:
    msg = _error(load_json, text)
    assert msg.startswith(f"in/file: line {line}: duplicate key {key!r}")


def test_json_syntax_error_is_one_line() -> None:
    assert "not valid JSON" in _error(load_json, '{"a": [1,\n 2}')


# ---- YAML ------------------------------------------------------------------------------------------


def test_yaml_merge_key_may_be_overridden() -> None:
    text = "base: &base\n  x: 1\n  y: 2\nderived:\n  <<: *base\n  x: 3\n"
    assert load_yaml(text, "in/file") == {"base": {"x": 1, "y": 2}, "derived": {"x": 3, "y": 2}}


def test_yaml_several_merges_and_lists_of_mappings() -> None:
    text = "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  y: 5\nlist:\n  - {k: 1}\n  - {k: 2}\n"
    assert load_yaml(text, "in/file") == {
        "a": {"x": 1},
        "b": {"y": 2},
        "c": {"x": 1, "y": 5},
        "list": [{"k": 1}, {"k": 2}],
    }


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("contents:\n  packages: [a]\n  repositories: [r]\n  packages: [b]\n", "packages", 4),
        ("a: 1\nb: 2\na: 3\n", "a", 3),
        ("list:\n  - {k: 1}\n  - k: 2\n    j: 3\n    k: 4\n", "k", 5),
        ("base: &b {x: 1}\nd:\n  <<: *b\n  x: 2\n  x: 3\n", "x", 5),
        ("top: {a: 1, b: 2, a: 3}\n", "a", 1),
    ],
    ids=["spec-packages-twice", "top-level", "in-a-list", "after-a-merge", "flow-mapping"],
)
def test_yaml_duplicate_key_names_key_and_line(text: str, key: str, line: int) -> None:
    msg = _error(load_yaml, text)
    assert msg.startswith(f"in/file: line {line}: duplicate key {key!r}")


def test_yaml_syntax_error_is_one_line() -> None:
    assert _error(load_yaml, "a: [1,\n").startswith("in/file: malformed YAML at line 2, column 1: ")
