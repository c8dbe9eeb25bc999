"""Repository indexes: `APKINDEX.tar.gz` (signed) holding DESCRIPTION and the APKINDEX text.

APKINDEX is a list of blank-line separated blocks of `X:value` lines (C: checksum, P: name, V: version...).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import re
import threading
from dataclasses import dataclass
from typing import Iterator, List, NamedTuple, Optional, Tuple

from ocibuild.apk.archive import read_apk
from ocibuild.apk.signing import Keyring
from ocibuild.apk.version import parse_dependency
from ocibuild.errors import OciBuildError

__all__ = ["IndexEntry", "gc_paused", "parse_apkindex", "ApkIndex", "load_index"]

log = logging.getLogger(__name__)


class IndexEntry(NamedTuple):  # a tuple: an index holds tens of thousands, made in one pass
    name: str
    version: str
    architecture: str = ""
    size: int = 0  # size of the .apk file
    installed_size: int = 0
    checksum: str = ""  # "Q1" + base64(sha1(control member))
    depends: Tuple[str, ...] = ()
    provides: Tuple[str, ...] = ()
    install_if: Tuple[str, ...] = ()
    replaces: Tuple[str, ...] = ()  # apk-tools does not write r: in indexes; .PKGINFO has the real list
    origin: str = ""
    build_time: int = 0
    commit: str = ""
    license: str = ""
    description: str = ""
    url: str = ""  # project URL (U:)
    maintainer: str = ""
    provider_priority: Optional[int] = None
    replaces_priority: Optional[int] = None

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"


_TEXT_FIELDS = {
    "C": "checksum",
    "P": "name",
    "V": "version",
    "A": "architecture",
    "T": "description",
    "U": "url",
    "L": "license",
    "o": "origin",
    "m": "maintainer",
    "c": "commit",
}
_INT_FIELDS = {
    "S": "size",
    "I": "installed_size",
    "t": "build_time",
    "k": "provider_priority",
    "q": "replaces_priority",
}
_LIST_FIELDS = {"D": "depends", "p": "provides", "i": "install_if", "r": "replaces"}


class _Unusable(Exception):
    """Why one index entry cannot be used; the rest of the index still serves."""


# Dependency lists are checked in one regex match when every item has the common form: a name,
# optionally with an operator and a version in apk's documented grammar (a subset of what
# apk 2.14 accepts). Anything else is parsed item by item (cached: items repeat across entries).
_COMMON_VERSION = (
    r"\d{1,17}(?:\.\d{1,17})*[a-z]?(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d{0,17})*(?:-r\d{1,17})?"
)
_COMMON_ITEM = rf"!?[^\s<>=~!@]+(?:(?:[<>]?=|[<>~]|=~|~=|[<>]~){_COMMON_VERSION})?"
_COMMON_LIST = re.compile(rf"{_COMMON_ITEM}(?: {_COMMON_ITEM})*\Z")
_parse_dependency = functools.lru_cache(maxsize=None)(parse_dependency)
_NOT_A_FIELD = re.compile(r"^(?!.:|$)", re.MULTILINE)  # a line, not blank, that does not start with `X:`


def _dependencies(value: Optional[str]) -> Tuple[str, ...]:
    if not value:
        return ()
    if not _COMMON_LIST.match(value):
        for text in value.split():
            try:
                _parse_dependency(text)
            except OciBuildError as e:
                raise _Unusable(str(e)) from None
    return tuple(value.split())


def _bad_number(lines: List[str], first_line: int) -> _Unusable:
    for n, line in enumerate(lines):
        if line[0] in _INT_FIELDS:
            try:
                int(line[2:])
            except ValueError:
                return _Unusable(f"line {first_line + n}: {line[0]}: must be an integer, got {line[2:42]!r}")
    raise AssertionError("no bad number")  # pragma: no cover


def _entry(block: str, first_line: int, check_lines: bool) -> IndexEntry:
    """The entry of one block (its lines, no blank ones); _Unusable says why it cannot be used."""
    lines = block.split("\n")
    bad = _NOT_A_FIELD.search(block) if check_lines else None
    if bad:
        n = block.count("\n", 0, bad.start())
        raise _Unusable(f"line {first_line + n} is not 'X:value': {lines[n][:80]!r}")
    fields = {line[0]: line[2:] for line in lines}  # a repeated letter: the last one counts
    get = fields.get
    name, version, checksum = get("P"), get("V"), get("C")
    if not name:
        raise _Unusable("it has no P: field")
    if not version:
        raise _Unusable("it has no V: field")
    if not checksum:
        raise _Unusable("it has no C: field")
    if not checksum.startswith("Q1"):
        raise _Unusable(f"unsupported checksum {checksum!r} (expected Q1...)")
    try:
        k, q = get("k"), get("q")
        size, installed_size, build_time = int(get("S", 0)), int(get("I", 0)), int(get("t", 0))
        provider_priority = int(k) if k is not None else None
        replaces_priority = int(q) if q is not None else None
    except ValueError:
        raise _bad_number(lines, first_line) from None
    # apk keeps any V: (it orders even invalid versions), so no version check; dependency lists
    # must parse, or the entry's requirements would silently shrink.
    return IndexEntry(
        name=name,
        version=version,
        checksum=checksum,
        architecture=get("A", ""),
        description=get("T", ""),
        url=get("U", ""),
        license=get("L", ""),
        origin=get("o", ""),
        maintainer=get("m", ""),
        commit=get("c", ""),
        size=size,
        installed_size=installed_size,
        build_time=build_time,
        provider_priority=provider_priority,
        replaces_priority=replaces_priority,
        depends=_dependencies(get("D")),
        provides=_dependencies(get("p")),
        install_if=_dependencies(get("i")),
        replaces=tuple(get("r", "").split()),
    )


_gc_pauses = 0  # gc_paused() blocks in progress, in any thread
_gc_lock = threading.Lock()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while building tens of thousands of acyclic objects.

    Each collection would walk every entry made so far; pausing it halves the time to parse an
    index or set up a resolution (benchmarks/apk_index_bench.py). Nested or concurrent pauses
    resume collection only when the last one ends, and only if it was on before the first.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


_gc_was_enabled = True


def parse_apkindex(text: str, origin: str) -> List[IndexEntry]:
    """Parse APKINDEX text; unknown field letters are ignored, as apk-tools does.

    An entry that cannot be used (a line that is not `X:value`, a missing name, version or
    checksum, a bad number or dependency) is skipped with a warning naming the index, the package
    and why; the other entries still serve, as in apk-tools.
    """
    with gc_paused():
        return _parse_blocks(text, origin)


def _parse_blocks(text: str, origin: str) -> List[IndexEntry]:
    entries: List[IndexEntry] = []
    line = 1
    check_lines = _NOT_A_FIELD.search(text) is not None  # one scan: most indexes have no bad line
    for block in text.split("\n\n"):
        first = line
        line += block.count("\n") + 2
        if block[:1] == "\n" or block[-1:] == "\n":  # more than one blank line between blocks
            first += len(block) - len(block.lstrip("\n"))
            block = block.strip("\n")
        if not block:
            continue
        try:
            entries.append(_entry(block, first, check_lines))
        except _Unusable as why:
            found = {ln[0]: ln[2:] for ln in block.split("\n") if ln[1:2] == ":"}
            package = f"{found.get('P') or '?'}-{found.get('V') or '?'}"
            log.warning(f"{origin}: skipping APKINDEX entry {package} (line {first}): {why}")
    return entries


@dataclass(frozen=True)
class ApkIndex:
    origin: str
    description: str
    key_name: str
    entries: Tuple[IndexEntry, ...]


def load_index(data: bytes, keyring: Keyring, origin: str) -> ApkIndex:
    """Verify an APKINDEX.tar.gz's signature with `keyring`, then parse it."""
    archive = read_apk(data, origin)
    key_name = keyring.verify(archive)
    if archive.data_range is not None:
        raise OciBuildError(f"{origin}: has a data member: this is a package, not an APKINDEX.tar.gz")
    files = archive.control_files
    if "APKINDEX" not in files:
        raise OciBuildError(
            f"{origin}: no APKINDEX file inside (found {', '.join(sorted(files)) or 'nothing'}): not an index"
        )
    try:
        text = files["APKINDEX"].decode("utf-8")
        description = files.get("DESCRIPTION", b"").decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise OciBuildError(f"{origin}: APKINDEX is not UTF-8 text ({e}): the index is malformed") from None
    return ApkIndex(origin, description, key_name, tuple(parse_apkindex(text, origin)))
