"""The `.PKGINFO` file of an .apk's control member: `key = value` lines written by abuild."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ocibuild.errors import OciBuildError

__all__ = ["PkgInfo", "parse_pkginfo"]

# Keys whose values are space-separated lists; abuild writes some one per line, apk-tools accepts both.
_LIST_KEYS = {
    "depend": "depends",
    "provides": "provides",
    "replaces": "replaces",
    "install_if": "install_if",
    "triggers": "triggers",
}
_TEXT_KEYS = {
    "pkgname",
    "pkgver",
    "pkgdesc",
    "url",
    "packager",
    "arch",
    "origin",
    "commit",
    "maintainer",
    "license",
    "datahash",
}
_INT_KEYS = {"builddate", "size", "provider_priority", "replaces_priority"}


@dataclass(frozen=True)
class PkgInfo:
    pkgname: str
    pkgver: str
    arch: str = ""
    size: int = 0  # installed size in bytes
    datahash: str = ""  # sha256 hex of the raw data member
    builddate: int = 0
    origin: str = ""
    depends: Tuple[str, ...] = ()
    provides: Tuple[str, ...] = ()
    replaces: Tuple[str, ...] = ()
    install_if: Tuple[str, ...] = ()
    triggers: Tuple[str, ...] = ()
    license: str = ""
    commit: str = ""
    url: str = ""
    pkgdesc: str = ""
    packager: str = ""
    maintainer: str = ""
    provider_priority: Optional[int] = None
    replaces_priority: Optional[int] = None
    extra: Tuple[Tuple[str, str], ...] = ()  # keys this module does not know, in file order


def parse_pkginfo(text: str, origin: str) -> PkgInfo:
    """Parse `.PKGINFO`; `origin` names the package file in errors."""
    text_values: Dict[str, str] = {}
    int_values: Dict[str, int] = {}
    lists: Dict[str, List[str]] = {k: [] for k in _LIST_KEYS.values()}
    extra: List[Tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line[0] in " \t":
            # A wrapped value (seen in real `license` lines): apk-tools ignores such lines, and so does the
            # index's L: field, so ignoring it keeps both views of the package identical.
            continue
        key, sep, value = line.partition(" = ")
        if not sep or not key or " " in key:
            raise OciBuildError(
                f"{origin}: .PKGINFO line {lineno} is not 'key = value': {line[:80]!r}: the package is malformed"
            )
        if key in _LIST_KEYS:
            lists[_LIST_KEYS[key]].extend(value.split())
        elif key in _INT_KEYS:
            try:
                int_values[key] = int(value)
            except ValueError:
                raise OciBuildError(
                    f"{origin}: .PKGINFO line {lineno}: {key} must be an integer, got {value!r}: the package is malformed"
                ) from None
        elif key in _TEXT_KEYS:
            text_values[key] = value
        else:
            extra.append((key, value))
    for required in ("pkgname", "pkgver"):
        if not text_values.get(required):
            raise OciBuildError(f"{origin}: .PKGINFO has no {required}: the package is malformed")
    return PkgInfo(
        pkgname=text_values["pkgname"],
        pkgver=text_values["pkgver"],
        arch=text_values.get("arch", ""),
        size=int_values.get("size", 0),
        datahash=text_values.get("datahash", ""),
        builddate=int_values.get("builddate", 0),
        origin=text_values.get("origin", ""),
        depends=tuple(lists["depends"]),
        provides=tuple(lists["provides"]),
        replaces=tuple(lists["replaces"]),
        install_if=tuple(lists["install_if"]),
        triggers=tuple(lists["triggers"]),
        license=text_values.get("license", ""),
        commit=text_values.get("commit", ""),
        url=text_values.get("url", ""),
        pkgdesc=text_values.get("pkgdesc", ""),
        packager=text_values.get("packager", ""),
        maintainer=text_values.get("maintainer", ""),
        provider_priority=int_values.get("provider_priority"),
        replaces_priority=int_values.get("replaces_priority"),
        extra=tuple(extra),
    )
