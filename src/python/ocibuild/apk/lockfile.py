"""The APK lockfile: apko's `apko.lock.json` v1, extended so that a build needs nothing but the lock.

Extensions (documented in docs/apk-lockfile.md): per package `sha256`, `size`, `replaces`,
`dependencies`; per key `data` (the PEM). Keys are written in a fixed order and packages in install
order per architecture, so the same resolution always gives the same bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ocibuild.apk.signing import Keyring
from ocibuild.errors import OciBuildError

LOCKFILE_VERSION = "v1"

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SPEC_CHECKSUM = re.compile(r"^sha256-[0-9a-f]{64}$")
_SECTION_CHECKSUM = re.compile(r"^(sha1|sha256)-[A-Za-z0-9+/]+={0,2}$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")
_Q1 = re.compile(r"^Q1[A-Za-z0-9+/]{27}=$")


@dataclass(frozen=True)
class LockedSection:
    """One gzip member of a package: byte [start, end) in the .apk and apko's checksum of its raw bytes
    ("sha1-<base64>" for signature and control, "sha256-<base64>" for data)."""

    start: int
    end: int
    checksum: str

    @property
    def http_range(self) -> str:
        return f"bytes={self.start}-{self.end - 1}"  # HTTP ranges are inclusive, as apko writes them


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    architecture: str
    url: str  # upstream URL, whatever mirror it was fetched from
    checksum: str  # "Q1..." of the control member, as in the index's C: line
    signature: LockedSection
    control: LockedSection
    data: LockedSection
    sha256: str  # hex sha256 of the whole .apk
    size: int  # bytes of the whole .apk
    replaces: Tuple[str, ...] = ()
    dependencies: Tuple[str, ...] = ()  # the package's own D: entries (so:/cmd:/!conflicts included)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"


@dataclass(frozen=True)
class LockedKey:
    name: str  # key file name, as it appears in ".SIGN.RSA.<name>"
    url: str  # as written in the spec: a URL, or a path relative to the spec
    pem: bytes


@dataclass(frozen=True)
class LockedRepository:
    name: str  # apko style: URL without scheme + "/<arch>"
    url: str  # the arch's APKINDEX.tar.gz
    architecture: str


@dataclass(frozen=True)
class Lockfile:
    spec_name: str
    spec_checksum: str  # "sha256-<hex of the spec file bytes>"
    keys: Tuple[LockedKey, ...]
    repositories: Tuple[LockedRepository, ...]
    packages: Tuple[LockedPackage, ...]  # grouped by architecture, each group in install order

    @property
    def archs(self) -> List[str]:
        seen: List[str] = []
        for pkg in self.packages:
            if pkg.architecture not in seen:
                seen.append(pkg.architecture)
        for repo in self.repositories:
            if repo.architecture not in seen:
                seen.append(repo.architecture)
        return seen

    def packages_for(self, arch: str) -> List[LockedPackage]:
        """The packages of one architecture, in install order."""
        return [p for p in self.packages if p.architecture == arch]

    def keyring(self) -> Keyring:
        return Keyring.from_pems({k.name: k.pem for k in self.keys})


# ---- writing -------------------------------------------------------------------------------------


def _section_json(section: LockedSection) -> Dict[str, Any]:
    return {"range": section.http_range, "checksum": section.checksum}


def _package_json(pkg: LockedPackage) -> Dict[str, Any]:
    # apko's keys in apko's order, then ours.
    return {
        "name": pkg.name,
        "url": pkg.url,
        "version": pkg.version,
        "architecture": pkg.architecture,
        "signature": _section_json(pkg.signature),
        "control": _section_json(pkg.control),
        "data": _section_json(pkg.data),
        "checksum": pkg.checksum,
        "sha256": pkg.sha256,
        "size": pkg.size,
        "replaces": list(pkg.replaces),
        "dependencies": list(pkg.dependencies),
    }


def dump_lockfile(lock: Lockfile) -> str:
    """Canonical JSON text: fixed key order, 2-space indent, ASCII, trailing newline."""
    doc = {
        "version": LOCKFILE_VERSION,
        "config": {"name": lock.spec_name, "checksum": lock.spec_checksum},
        "contents": {
            "keyring": [{"name": k.name, "url": k.url, "data": k.pem.decode("ascii")} for k in lock.keys],
            "build_repositories": [],
            "repositories": [
                {"name": r.name, "url": r.url, "architecture": r.architecture} for r in lock.repositories
            ],
            "packages": [_package_json(p) for p in lock.packages],
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


# ---- reading (strict: a lock is machine-written, so anything unexpected means it was damaged) ------


class _Reader:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, what: str) -> "OciBuildError":
        return OciBuildError(
            f"{self.origin}: {where}: {what}; re-run `./pants generate-lockfiles` to rewrite the lock"
        )

    def mapping(
        self, value: Any, where: str, keys: Sequence[str], optional: Sequence[str] = ()
    ) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        unknown = sorted(set(value) - set(keys) - set(optional))
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(where, f"missing key {missing[0]!r}")
        return value

    def items(self, value: Any, where: str) -> List[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "expected a list")
        return value

    def text(self, value: Any, where: str, pattern: Optional["re.Pattern[str]"] = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "expected a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"malformed value {value!r}")
        return value

    def integer(self, value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(where, "expected a non-negative integer")
        return value

    def strings(self, value: Any, where: str) -> Tuple[str, ...]:
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(self.items(value, where)))

    def section(self, value: Any, where: str) -> LockedSection:
        obj = self.mapping(value, where, ("range", "checksum"))
        match = _RANGE.match(self.text(obj["range"], f"{where}.range"))
        if not match or int(match.group(2)) < int(match.group(1)):
            raise self.fail(f"{where}.range", f"malformed range {obj['range']!r}")
        checksum = self.text(obj["checksum"], f"{where}.checksum", _SECTION_CHECKSUM)
        return LockedSection(int(match.group(1)), int(match.group(2)) + 1, checksum)


def load_lockfile(text: str, origin: str) -> Lockfile:
    r = _Reader(origin)
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise r.fail(f"line {getattr(e, 'lineno', '?')}", "not valid JSON") from None
    doc = r.mapping(doc, "top level", ("version", "config", "contents"))
    if doc["version"] != LOCKFILE_VERSION:
        raise r.fail(
            "version", f"unsupported lockfile version {doc['version']!r}, expected {LOCKFILE_VERSION!r}"
        )
    config = r.mapping(doc["config"], "config", ("name", "checksum"))
    contents = r.mapping(
        doc["contents"], "contents", ("keyring", "repositories", "packages"), ("build_repositories",)
    )
    if contents.get("build_repositories"):
        raise r.fail("contents.build_repositories", "build repositories are not supported")

    keys = []
    for i, k in enumerate(r.items(contents["keyring"], "contents.keyring")):
        where = f"contents.keyring[{i}]"
        k = r.mapping(k, where, ("name", "url", "data"))
        pem = r.text(k["data"], f"{where}.data")
        if "-----BEGIN PUBLIC KEY-----" not in pem:
            raise r.fail(f"{where}.data", "not a PEM public key")
        if not pem.isascii():
            raise r.fail(f"{where}.data", "the PEM key holds non-ASCII characters")
        keys.append(
            LockedKey(
                r.text(k["name"], f"{where}.name"), r.text(k["url"], f"{where}.url"), pem.encode("ascii")
            )
        )

    repositories = []
    for i, repo in enumerate(r.items(contents["repositories"], "contents.repositories")):
        where = f"contents.repositories[{i}]"
        repo = r.mapping(repo, where, ("name", "url", "architecture"))
        repositories.append(
            LockedRepository(*(r.text(repo[k], f"{where}.{k}") for k in ("name", "url", "architecture")))
        )

    packages = []
    for i, p in enumerate(r.items(contents["packages"], "contents.packages")):
        where = f"contents.packages[{i}]"
        p = r.mapping(
            p,
            where,
            (
                "name",
                "url",
                "version",
                "architecture",
                "signature",
                "control",
                "data",
                "checksum",
                "sha256",
                "size",
                "replaces",
                "dependencies",
            ),
        )
        pkg = LockedPackage(
            name=r.text(p["name"], f"{where}.name"),
            version=r.text(p["version"], f"{where}.version"),
            architecture=r.text(p["architecture"], f"{where}.architecture"),
            url=r.text(p["url"], f"{where}.url"),
            checksum=r.text(p["checksum"], f"{where}.checksum", _Q1),
            signature=r.section(p["signature"], f"{where}.signature"),
            control=r.section(p["control"], f"{where}.control"),
            data=r.section(p["data"], f"{where}.data"),
            sha256=r.text(p["sha256"], f"{where}.sha256", _SHA256_HEX),
            size=r.integer(p["size"], f"{where}.size"),
            replaces=r.strings(p["replaces"], f"{where}.replaces"),
            dependencies=r.strings(p["dependencies"], f"{where}.dependencies"),
        )
        if not (
            pkg.signature.start == 0
            and pkg.signature.end == pkg.control.start
            and pkg.control.end == pkg.data.start
            and pkg.data.end == pkg.size
        ):
            raise r.fail(
                where, f"signature/control/data ranges of {pkg.name} do not tile its {pkg.size} bytes"
            )
        packages.append(pkg)

    lock = Lockfile(
        spec_name=r.text(config["name"], "config.name"),
        spec_checksum=r.text(config["checksum"], "config.checksum", _SPEC_CHECKSUM),
        keys=tuple(keys),
        repositories=tuple(repositories),
        packages=tuple(packages),
    )
    _check_consistency(lock, r)
    return lock


def _check_consistency(lock: Lockfile, r: _Reader) -> None:
    names = [k.name for k in lock.keys]
    if len(set(names)) != len(names):
        raise r.fail("contents.keyring", "a key name appears twice")
    seen = set()
    finished_archs: List[str] = []
    for pkg in lock.packages:
        if (pkg.architecture, pkg.name) in seen:
            raise r.fail("contents.packages", f"{pkg.name} ({pkg.architecture}) appears twice")
        seen.add((pkg.architecture, pkg.name))
        if finished_archs and finished_archs[-1] != pkg.architecture:
            if pkg.architecture in finished_archs:
                raise r.fail("contents.packages", f"packages of {pkg.architecture} are not grouped together")
            finished_archs.append(pkg.architecture)
        elif not finished_archs:
            finished_archs.append(pkg.architecture)
