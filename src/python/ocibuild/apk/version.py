"""Alpine package versions and dependency constraints, exactly as apk-tools 2.14 (src/version.c).

A line-by-line port of apk-tools 2.14.0's tokenizer and comparison, because Alpine's indexes are
made and read by it: the grammar is `{digit}{.digit}...{letter}{digit}...{_suffix{digit}}...{-rN}`
(e.g. `1.2.4_git20230717-r4`, `2023d-r0`, and `0.99f7-r2`: 2.14 lets digits follow a letter).
Suffixes `_alpha _beta _pre _rc` sort before the plain version and `_cvs _svn _git _hg _p` after.
An invalid version is not an error: apk compares it token by token up to where it stops parsing,
which for words is a plain character comparison (`abc` < `def`), and so does this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ocibuild.errors import OciBuildError

__all__ = ["compare_versions", "version_sort_key", "is_valid_version", "Dependency", "parse_dependency"]

# apk-tools' token types; their numeric order matters to next_token() and the final comparison.
_INVALID, _DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END = (-1, 0, 1, 2, 3, 4, 5, 6)

_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")  # C's islower() in the C locale


def _next_token(kind: int, s: str, pos: int) -> Tuple[int, int]:
    """apk's next_token(): the type of the token at `pos`, skipping its separator."""
    n = _INVALID
    if pos >= len(s) or s[pos] == "\0":
        n = _END
    elif kind in (_DIGIT, _DIGIT_OR_ZERO) and s[pos] in _LOWER:
        n = _LETTER
    elif kind == _LETTER and s[pos] in _DIGITS:
        n = _DIGIT
    elif kind == _SUFFIX and s[pos] in _DIGITS:
        n = _SUFFIX_NO
    else:
        c = s[pos]
        if c == ".":
            n = _DIGIT_OR_ZERO
        elif c == "_":
            n = _SUFFIX
        elif c == "-":
            if len(s) - pos > 1 and s[pos + 1] == "r":
                n = _REVISION_NO
                pos += 1
        pos += 1
    if n < kind and not (
        (n == _DIGIT_OR_ZERO and kind == _DIGIT)
        or (n == _SUFFIX and kind == _SUFFIX_NO)
        or (n == _DIGIT and kind == _LETTER)
    ):
        n = _INVALID
    return n, pos


def _get_token(kind: int, s: str, pos: int) -> Tuple[int, int, int]:
    """apk's get_token(): (value, type of the next token, position after this one)."""
    size = len(s)
    if pos >= size:
        return 0, _END, pos
    i, value, next_kind = 0, 0, _INVALID
    if kind == _DIGIT_OR_ZERO and s[pos] == "0":
        # Leading zeros: the extra zeros count negatively, the rest is read as a number next.
        while pos + i + 1 < size and s[pos + i + 1] == "0":
            i += 1
        next_kind, value = _DIGIT, -i
    elif kind in (_DIGIT_OR_ZERO, _DIGIT, _SUFFIX_NO, _REVISION_NO):
        while pos + i < size and s[pos + i] in _DIGITS:
            i += 1
        if i >= 18:
            return -1, _INVALID, pos
        value = int(s[pos : pos + i]) if i else 0
    elif kind == _LETTER:
        value, i = ord(s[pos]), 1
    elif kind == _SUFFIX:
        for n, suffix in enumerate(_PRE_SUFFIXES):
            if s.startswith(suffix, pos):
                value, i = n - len(_PRE_SUFFIXES), len(suffix)
                break
        else:
            for n, suffix in enumerate(_POST_SUFFIXES):
                if s.startswith(suffix, pos):
                    value, i = n, len(suffix)
                    break
            else:
                return -1, _INVALID, pos
    else:
        return -1, _INVALID, pos
    pos += i
    if pos == size:
        return value, _END, pos
    if next_kind != _INVALID:
        return value, next_kind, pos
    kind, pos = _next_token(kind, s, pos)
    return value, kind, pos


# apk's result bits: a comparison gives one of them, a dependency accepts a mask of them.
EQUAL, LESS, GREATER, FUZZY = 1, 2, 4, 8
_CHECKSUM = LESS | GREATER


def _compare(a: str, b: str, fuzzy: bool) -> int:
    """apk_version_compare_blob_fuzzy(): EQUAL, LESS or GREATER."""
    at = bt = _DIGIT
    av = bv = 0
    pa = pb = 0
    while at == bt and at != _END and at != _INVALID and av == bv:
        av, at, pa = _get_token(at, a, pa)
        bv, bt, pb = _get_token(bt, b, pb)
    if av < bv:
        return LESS
    if av > bv:
        return GREATER
    if at == bt or fuzzy:
        return EQUAL
    # Equal so far: the longer version is greater, unless it goes on with a pre-release suffix.
    if at == _SUFFIX and _get_token(at, a, pa)[0] < 0:
        return LESS
    if bt == _SUFFIX and _get_token(bt, b, pb)[0] < 0:
        return GREATER
    if at > bt:
        return LESS
    if bt > at:
        return GREATER
    return EQUAL


_SIGN = {EQUAL: 0, LESS: -1, GREATER: 1}


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as apk-tools 2.14 orders versions `a` and `b` (valid or not)."""
    return _SIGN[_compare(a, b, False)]


def version_sort_key(v: str):
    """A `sorted(..., key=)` key in apk order."""
    return functools.cmp_to_key(compare_versions)(v)


@functools.lru_cache(maxsize=65536)
def is_valid_version(v: str) -> bool:
    """apk_version_validate(): what `apk version -c` accepts."""
    kind, pos = _DIGIT, 0
    while kind != _END and kind != _INVALID:
        _, kind, pos = _get_token(kind, v, pos)
    return kind == _END


# apk reads an operator as any run of `<>=~`, each character adding to the mask; these are the
# masks it means something by, each with the spelling apk writes.
_OP_MASKS = {
    LESS: "<",
    LESS | EQUAL: "<=",
    EQUAL: "=",
    GREATER | EQUAL: ">=",
    GREATER: ">",
    FUZZY | EQUAL: "~",
    LESS | EQUAL | FUZZY: "<~",
    GREATER | EQUAL | FUZZY: ">~",
    _CHECKSUM: "><",
}
_MASK_OF_OP = {op: mask for mask, op in _OP_MASKS.items()}
_OP_BITS = {"<": LESS, ">": GREATER, "=": EQUAL, "~": FUZZY | EQUAL}


@dataclass(frozen=True)
class Dependency:
    """`[!]name[@tag][op version]` from D:/p:/i: fields, .PKGINFO or a spec's package list.

    `op` is one of "=", "<", "<=", ">", ">=", "~" (version prefix match), "<~", ">~" (less or
    greater, or a prefix match) or "><" (checksum match), as apk-tools 2.14 writes them.
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
        mask = _MASK_OF_OP[self.op]
        return bool(_compare(version, self.version, bool(mask & FUZZY)) & mask)

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
    j = 0
    while j < len(rest) and rest[j] in "<>=~":
        j += 1
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
    mask = 0
    for c in op_text:
        mask |= _OP_BITS[c]
    op = _OP_MASKS.get(mask)
    if op is None:
        raise OciBuildError(
            f"{where}invalid dependency {text!r}: unknown operator {op_text!r} (use = < <= > >= ~ <~ >~)"
        )
    if not version or (op != "><" and not is_valid_version(version)):
        raise OciBuildError(f"{where}invalid dependency {text!r}: {version!r} is not a valid apk version")
    return Dependency(name, op, version, conflict, tag or None)


def _parse_dependencies(text: str, origin: str = "") -> List[Dependency]:
    """A space-separated list (an index D:/p:/i: value)."""
    return [parse_dependency(t, origin) for t in text.split()]
