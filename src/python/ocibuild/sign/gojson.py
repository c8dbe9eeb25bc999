"""JSON bytes as Go's encoding/json.Marshal writes them, so signed payloads and manifests match cosign's.

Go emits struct fields in declaration order and map keys sorted; callers build dicts in that order
(`go_map` sorts a map's keys). Strings are escaped the Go way: <, > and & as \\u003c..., U+2028/U+2029
escaped, \\b \\f \\n \\r \\t short forms (Go 1.22+), other control characters as lowercase \\u00XX, all
other text as raw UTF-8. Output is compact (no spaces).
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Mapping

__all__ = ["marshal", "go_map", "go_bytes"]

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNICODE_ESCAPED = {"<", ">", "&", "\u2028", "\u2029"}


def _string(s: str) -> str:
    out: List[str] = ['"']
    for ch in s:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch in _UNICODE_ESCAPED:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\ufffd")  # Go replaces invalid UTF-8 (a lone surrogate here) with U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _encode(value: Any, out: List[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {key!r}")
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        # Floats are left out on purpose: Go's float formatting differs from Python's and nothing we sign has one.
        raise TypeError(f"cannot encode {type(value).__name__} the way Go does")


def marshal(value: Any) -> bytes:
    """The bytes Go's json.Marshal writes for `value` (dicts in their insertion order)."""
    out: List[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def go_map(mapping: Mapping[str, Any]) -> Dict[str, Any]:
    """A Go map[string]T: Go sorts map keys (by bytes, which for str is code point order)."""
    return {key: mapping[key] for key in sorted(mapping, key=lambda k: k.encode("utf-8"))}


def go_bytes(data: bytes) -> str:
    """A Go []byte field: standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")
