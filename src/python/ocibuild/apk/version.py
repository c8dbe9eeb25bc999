"""Alpine package versions and dependency constraints, ordered exactly as apk-tools 2.14 (src/version.c).

A version is `digits{.digits}[letter]{_suffix[digits]}[-rN]`, e.g. `1.2.4_git20230717-r4`, `2023d-r0`.
Suffixes `_alpha _beta _pre _rc` sort before the plain version and `_cvs _svn _git _hg _p` after it.
A numeric part with a leading zero (after the first) is compared as a string, as in apk-tools.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

from ocibuild.errors import OciBuildError

# Token kinds, in the order apk-tools uses them: the order matters for the final comparison.
_INITIAL_DIGIT, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END, _INVALID = range(8)

_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_SUFFIX_NONE = 5

_Token = Tuple[int, str, int]  # (kind, text, suffix value)


def _span(s: str, pos: int, chars: str) -> int:
    while pos < len(s) and s[pos] in chars:
        pos += 1
    return pos


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _tokens(v: str) -> Iterator[_Token]:
    """The tokens of `v`, ending with an _END or _INVALID token."""
    end = _span(v, 0, _DIGITS)
    if end == 0:
        yield (_INVALID, "", 0)
        return
    kind, pos = _INITIAL_DIGIT, end
    yield (kind, v[:end], 0)
    while True:
        if pos == len(v):
            yield (_END, "", 0)
            return
        c = v[pos]
        if c in _LOWER:
            if kind > _DIGIT:
                break
            kind, text, pos = _LETTER, c, pos + 1
        elif c == "." or c in _DIGITS:
            if c == ".":
                if kind > _DIGIT:
                    break
                pos += 1
            end = _span(v, pos, _DIGITS)
            if end == pos:  # apk-tools tolerates "1." but nothing real uses it
                break
            if kind == _SUFFIX:
                kind = _SUFFIX_NO
            elif kind in (_INITIAL_DIGIT, _DIGIT):
                kind = _DIGIT
            else:
                break
            text, pos = v[pos:end], end
        elif c == "_":
            if kind > _SUFFIX_NO:
                break
            end = _span(v, pos + 1, _LOWER)
            text = v[pos + 1 : end]
            if text not in _SUFFIXES:
                break
            kind, pos = _SUFFIX, end
        elif c == "-":
            if kind >= _REVISION_NO or not v.startswith("-r", pos):
                break
            end = _span(v, pos + 2, _DIGITS)
            if end == pos + 2:
                break
            kind, text, pos = _REVISION_NO, v[pos + 2 : end], end
        else:
            break
        yield (kind, text, _SUFFIXES.get(text, 0) if kind == _SUFFIX else 0)
    yield (_INVALID, "", 0)


def _cmp(x, y) -> int:
    return (x > y) - (x < y)


def _token_cmp(kind: int, a: str, b: str, sa: int, sb: int) -> int:
    if kind == _DIGIT and (a[0] == "0" or b[0] == "0"):
        return _cmp(a.encode(), b.encode())  # Gentoo rule: leading zeros compare as strings
    if kind in (_INITIAL_DIGIT, _DIGIT, _SUFFIX_NO, _REVISION_NO):
        return _cmp(int(a), int(b))
    if kind == _LETTER:
        return _cmp(a, b)
    return _cmp(sa, sb)  # _SUFFIX


def _compare(a: str, b: str, fuzzy: bool) -> int:
    ta, tb = _tokens(a), _tokens(b)
    while True:
        ka, va, sa = next(ta)
        kb, vb, sb = next(tb)
        if ka != kb or ka >= _END:
            break
        r = _token_cmp(ka, va, vb, sa, sb)
        if r:
            return r
    if ka == kb:
        return 0
    if fuzzy and kb == _END:
        return 0  # `a` starts with all of `b`'s components
    # Equal so far: the longer version is greater, unless it continues with a pre-release suffix.
    if ka == _SUFFIX and sa < _SUFFIX_NONE:
        return -1
    if kb == _SUFFIX and sb < _SUFFIX_NONE:
        return 1
    return -1 if ka > kb else 1


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as apk-tools orders versions `a` and `b`."""
    return _compare(a, b, fuzzy=False)


def version_sort_key(v: str):
    """A `sorted(..., key=)` key in apk order."""
    return functools.cmp_to_key(compare_versions)(v)


def is_valid_version(v: str) -> bool:
    kind = _INITIAL_DIGIT
    for kind, _, _ in _tokens(v):
        pass
    return kind == _END


# Operators as sets of characters, as apk-tools reads them ("=>" is ">=").
_OPERATORS = {
    frozenset("="): "=",
    frozenset("<"): "<",
    frozenset("<="): "<=",
    frozenset(">"): ">",
    frozenset(">="): ">=",
    frozenset("~"): "~",
    frozenset("~="): "~",
    frozenset("<>"): "><",
}


@dataclass(frozen=True)
class Dependency:
    """`[!]name[@tag][op version]` from D:/p:/i: fields, .PKGINFO or a spec's package list.

    `op` is one of "=", "<", "<=", ">", ">=", "~" (version prefix match) or "><" (checksum match).
    """

    name: str
    op: Optional[str]
    version: Optional[str]
    conflict: bool = False
    tag: Optional[str] = None  # repository pin "name@tag"

    def matches_version(self, version: str) -> bool:
        """Whether `version` satisfies op/version (the `conflict` flag is the caller's to apply)."""
        if self.op is None or self.version is None:
            return True
        if self.op == "><":
            return version == self.version
        if self.op == "~":
            return _compare(version, self.version, fuzzy=True) == 0
        c = compare_versions(version, self.version)
        return {"=": c == 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[self.op]

    def __str__(self) -> str:
        tag = f"@{self.tag}" if self.tag else ""
        constraint = f"{self.op}{self.version}" if self.op else ""
        return f"{'!' if self.conflict else ''}{self.name}{tag}{constraint}"


def parse_dependency(text: str, origin: str = "") -> Dependency:
    """Parse one dependency like "so:libc.musl-x86_64.so.1", "!foo", "tzdata>=2023c", "foo~1.2"."""
    where = f"{origin}: " if origin else ""
    raw = text.strip()
    conflict = raw.startswith("!")
    body = raw[1:] if conflict else raw
    i = 0
    while i < len(body) and body[i] not in "<>=~":
        i += 1
    name_part, rest = body[:i], body[i:]
    j = _span(rest, 0, "<>=~")
    op_text, version = rest[:j], rest[j:]
    name, _, tag = name_part.partition("@")
    if not name or " " in raw:
        raise OciBuildError(
            f"{where}invalid dependency {text!r}: expected [!]name[op version], e.g. tzdata>=2023c"
        )
    if "@" in name_part and not tag:
        raise OciBuildError(f"{where}invalid dependency {text!r}: empty repository tag after '@'")
    if not op_text:
        return Dependency(name, None, None, conflict, tag or None)
    op = _OPERATORS.get(frozenset(op_text)) if len(op_text) <= 2 else None
    if op is None:
        raise OciBuildError(
            f"{where}invalid dependency {text!r}: unknown operator {op_text!r} (use = < <= > >= ~)"
        )
    if not version or (op != "><" and not is_valid_version(version)):
        raise OciBuildError(f"{where}invalid dependency {text!r}: {version!r} is not a valid apk version")
    return Dependency(name, op, version, conflict, tag or None)


def parse_dependencies(text: str, origin: str = "") -> List[Dependency]:
    """A space-separated list (an index D:/p:/i: value)."""
    return [parse_dependency(t, origin) for t in text.split()]
