"""Repository indexes: `APKINDEX.tar.gz` (signed) holding DESCRIPTION and the APKINDEX text.

APKINDEX is a list of blank-line separated blocks of `X:value` lines (C: checksum, P: name, V: version...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ocibuild.apk.archive import read_apk
from ocibuild.apk.signing import Keyring
from ocibuild.apk.version import is_valid_version
from ocibuild.errors import OciBuildError


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


def _entry(fields: Dict[str, object], origin: str, lineno: int) -> IndexEntry:
    for letter, attr in (("P", "name"), ("V", "version"), ("C", "checksum")):
        if not fields.get(attr):
            raise OciBuildError(
                f"{origin}: APKINDEX entry ending at line {lineno} has no {letter}: field: the index is malformed"
            )
    version = str(fields["version"])
    if not is_valid_version(version):
        raise OciBuildError(
            f"{origin}: APKINDEX line {lineno}: package {fields['name']} has invalid version {version!r}"
        )
    if not str(fields["checksum"]).startswith("Q1"):
        raise OciBuildError(
            f"{origin}: APKINDEX entry {fields['name']}-{version}: unsupported checksum {fields['checksum']!r} (expected Q1...)"
        )
    return IndexEntry(**fields)  # type: ignore[arg-type]


def parse_apkindex(text: str, origin: str) -> List[IndexEntry]:
    """Parse APKINDEX text; unknown field letters are ignored, as apk-tools does."""
    entries: List[IndexEntry] = []
    fields: Dict[str, object] = {}
    lines = text.split("\n")
    for lineno, line in enumerate(lines, 1):
        if not line:
            if fields:
                entries.append(_entry(fields, origin, lineno))
                fields = {}
            continue
        if len(line) < 2 or line[1] != ":":
            raise OciBuildError(
                f"{origin}: APKINDEX line {lineno} is not 'X:value': {line[:80]!r}: the index is malformed"
            )
        letter, value = line[0], line[2:]
        if letter in _TEXT_FIELDS:
            fields[_TEXT_FIELDS[letter]] = value
        elif letter in _INT_FIELDS:
            try:
                fields[_INT_FIELDS[letter]] = int(value)
            except ValueError:
                raise OciBuildError(
                    f"{origin}: APKINDEX line {lineno}: {letter}: must be an integer, got {value!r}: the index is malformed"
                ) from None
        elif letter in _LIST_FIELDS:
            fields[_LIST_FIELDS[letter]] = tuple(value.split())
    if fields:
        entries.append(_entry(fields, origin, len(lines)))
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
