"""Repository indexes: `APKINDEX.tar.gz` (signed) holding DESCRIPTION and the APKINDEX text.

APKINDEX is a list of blank-line separated blocks of `X:value` lines (C: checksum, P: name, V: version...).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ocibuild.apk.archive import read_apk
from ocibuild.apk.signing import Keyring
from ocibuild.apk.version import parse_dependency
from ocibuild.errors import OciBuildError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexEntry:
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


def _entry(fields: Dict[str, object]) -> IndexEntry:
    for letter, attr in (("P", "name"), ("V", "version"), ("C", "checksum")):
        if not fields.get(attr):
            raise _Unusable(f"it has no {letter}: field")
    if not str(fields["checksum"]).startswith("Q1"):
        raise _Unusable(f"unsupported checksum {fields['checksum']!r} (expected Q1...)")
    # apk keeps any V: (it orders even invalid versions), so no version check here; dependency
    # lists must parse, or the entry's requirements would silently shrink.
    for attr in ("depends", "provides", "install_if"):
        for text in fields.get(attr, ()):  # type: ignore[attr-defined]
            try:
                _parse_dependency(text)
            except OciBuildError as e:
                raise _Unusable(str(e)) from None
    return IndexEntry(**fields)  # type: ignore[arg-type]


_parse_dependency = functools.lru_cache(maxsize=None)(parse_dependency)


def parse_apkindex(text: str, origin: str) -> List[IndexEntry]:
    """Parse APKINDEX text; unknown field letters are ignored, as apk-tools does.

    An entry that cannot be used (a line that is not `X:value`, a missing name, version or
    checksum, a bad number or dependency) is skipped with a warning naming the index, the package
    and why; the other entries still serve, as in apk-tools.
    """
    entries: List[IndexEntry] = []
    fields: Dict[str, object] = {}
    problem = ""
    first_line = 1
    lines = text.split("\n")
    lines.append("")  # the last block may lack its blank line
    for lineno, line in enumerate(lines, 1):
        if not line:
            if fields or problem:
                try:
                    if problem:
                        raise _Unusable(problem)
                    entries.append(_entry(fields))
                except _Unusable as why:
                    package = f"{fields.get('name') or '?'}-{fields.get('version') or '?'}"
                    log.warning(f"{origin}: skipping APKINDEX entry {package} (line {first_line}): {why}")
            fields, problem, first_line = {}, "", lineno + 1
            continue
        if len(line) < 2 or line[1] != ":":
            problem = problem or f"line {lineno} is not 'X:value': {line[:80]!r}"
            continue
        letter, value = line[0], line[2:]
        if letter in _TEXT_FIELDS:
            fields[_TEXT_FIELDS[letter]] = value
        elif letter in _INT_FIELDS:
            try:
                fields[_INT_FIELDS[letter]] = int(value)
            except ValueError:
                problem = problem or f"line {lineno}: {letter}: must be an integer, got {value[:40]!r}"
        elif letter in _LIST_FIELDS:
            fields[_LIST_FIELDS[letter]] = tuple(value.split())
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
