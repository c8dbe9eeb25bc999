"""JSON and YAML readers that reject duplicate keys, naming the key and its line.

Python's json and PyYAML keep the last of two equal keys silently: a spec with `packages:` twice
would lock the second list only. Every document the project reads goes through these.
"""

from __future__ import annotations

import functools
import json
import json.decoder
import json.scanner
from typing import Any, List, Tuple

from ocibuild.errors import OciBuildError

__all__ = ["load_json", "load_yaml"]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _top_level_key_offsets(s: str, start: int, end: int) -> List[Tuple[str, int]]:
    """(key, offset) of each key of the object whose body is s[start:end], nested values skipped."""
    keys: List[Tuple[str, int]] = []
    depth, i, expect_key = 0, start, True
    while i < end:
        c = s[i]
        if c == '"':
            value, j = json.decoder.scanstring(s, i + 1)  # type: ignore[attr-defined]
            if depth == 0 and expect_key:
                keys.append((value, i))
                expect_key = False
            i = j
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            expect_key = True
        i += 1
    return keys


class _StrictJSONDecoder(json.JSONDecoder):
    def __init__(self, origin: str) -> None:
        super().__init__()
        plain_object = self.parse_object

        def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
            s, start = s_and_end
            pairs, end = plain_object(s_and_end, strict, scan_once, object_hook, lambda p: p, memo)
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    offsets = [o for k, o in _top_level_key_offsets(s, start, end) if k == key]
                    line = _line_of(s, offsets[1] if len(offsets) > 1 else start)
                    raise OciBuildError(
                        f"{origin}: line {line}: duplicate key {key!r}: each key may appear once; remove one"
                    )
                seen.add(key)
            return dict(pairs), end

        self.parse_object = parse_object
        self.scan_once = json.scanner.py_make_scanner(self)


def load_json(text: str, origin: str) -> Any:
    """Parse JSON text; a syntax error or a duplicate key raises OciBuildError naming `origin`."""
    try:
        return _StrictJSONDecoder(origin).decode(text)
    except json.JSONDecodeError as e:
        raise OciBuildError(f"{origin}: not valid JSON: {e}") from None


def _construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
    seen = set()
    for key_node, _ in node.value:  # before merging: a key may override one merged in by `<<`
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: SafeLoader's own error says so
            break
        if duplicate:
            raise OciBuildError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: duplicate key {key!r}:"
                " each key may appear once; remove one"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


@functools.lru_cache(maxsize=None)
def _strict_yaml_loader() -> Any:
    """A SafeLoader refusing duplicate keys. PyYAML is imported only here: JSON readers (the plugin's
    contract among them) need the standard library only."""
    import yaml

    class StrictYAMLLoader(yaml.SafeLoader):
        pass

    StrictYAMLLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    return StrictYAMLLoader


def load_yaml(text: str, origin: str) -> Any:
    """Parse one YAML document (safe types only); a duplicate key raises OciBuildError naming `origin`."""
    import yaml

    loader = _strict_yaml_loader()(text)
    loader.name = origin
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or " ".join(str(e).split())
        raise OciBuildError(f"{origin}: malformed YAML at {where}{problem}") from None
    finally:
        loader.dispose()
