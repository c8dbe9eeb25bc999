"""The APK lockfile: apko's `apko.lock.json` v1 (chainguard-dev/apko pkg/lock/lock.go), with extras.

We read every lock apko writes (from apko 0.13's, with keyring `content` and `runtime_repositories`,
back to pre-0.13 locks without `config`, package `checksum` or key content) and apko reads ours:
apko's keys have apko's names, types and encodings, and our extras are keys apko's decoder skips.

Extras (all optional, documented in docs/apk-lockfile.md): per package `sha256` and `size` of the
whole .apk, `replaces`, `dependencies` and `provides`. A lock without them still builds in the core
(each package is verified by its signature, control and data members, which apko pins), but a layer
with `packages=[...]` needs `dependencies`/`provides` to find its closure, and Pants needs
`sha256`/`size` to download packages. Keys and packages are written in a fixed order, so the same
resolution always gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import unquote

from ocibuild.apk.version import parse_dependency
from ocibuild.common.digests import base64_checksum
from ocibuild.common.validate import NonEmptyStr, decode, first_problem
from ocibuild.contract import RELOCK
from ocibuild.errors import OciBuildError
from ocibuild.strictload import load_json

if TYPE_CHECKING:
    from ocibuild.apk.signing import Keyring

__all__ = [
    "spec_lock_checksum",
    "LockedSection",
    "LockedPackage",
    "LockedKey",
    "LockedRepository",
    "Lockfile",
    "select_packages",
    "dump_lockfile",
    "load_lockfile",
]

# Reading, writing and subsetting a lock needs only the standard library (and PyYAML via strictload):
# the Pants plugin does it in Pants' own process. Checking keys and signatures needs `cryptography`,
# imported by the functions that do it (they run in the core's Processes).

_LOCKFILE_VERSION = "v1"
_RELOCK = f"{RELOCK} to rewrite the lock"

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SECTION_CHECKSUM = re.compile(r"^(sha1|sha256)-([A-Za-z0-9+/]+={0,2})$")
_DIGEST_SIZES = {"sha1": 20, "sha256": 32}
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")
_Q1 = re.compile(r"^Q1[A-Za-z0-9+/]{27}=$")


def spec_lock_checksum(spec_bytes: bytes) -> str:
    """`config.checksum` as apko writes it: "sha256-" + base64 of the spec file's sha256.

    apko hashes the spec and the files it `include`s; our specs include nothing, so for the same
    spec file both tools write the same value."""
    return base64_checksum(spec_bytes, "sha256")


def _b64_digest(text: str, algorithm: str) -> Optional[bytes]:
    try:
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == _DIGEST_SIZES[algorithm] else None


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
    # Our extras: None when the lock does not record them (a lock written by apko).
    sha256: Optional[str] = None  # hex sha256 of the whole .apk
    size: Optional[int] = None  # bytes of the whole .apk
    replaces: Optional[Tuple[str, ...]] = None  # .PKGINFO `replaces`
    dependencies: Optional[Tuple[str, ...]] = None  # .PKGINFO `depend` (so:/cmd:/!conflicts included)
    provides: Optional[Tuple[str, ...]] = None  # the index's `p:` entries (so:, cmd:, pc:, virtuals)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"

    @property
    def members(self) -> Tuple[Tuple[str, int, int, str], ...]:
        """(member, start, end, checksum) of the signature, control and data members, for verification."""
        return tuple(
            (what, s.start, s.end, s.checksum)
            for what, s in (("signature", self.signature), ("control", self.control), ("data", self.data))
        )


@dataclass(frozen=True)
class LockedKey:
    name: str  # ours: the key file name; apko's: the URL without scheme (or the path)
    url: str  # as written in the spec: a URL, or a path relative to the spec
    pem: Optional[bytes]  # the key itself (apko's `content`); None in pre-0.13 apko locks

    @property
    def signing_name(self) -> str:
        """The name signatures use (`.SIGN.RSA.<name>`): the last path segment, %-decoded."""
        return unquote(posixpath.basename(self.name))


@dataclass(frozen=True)
class LockedRepository:
    name: str  # apko style: URL without scheme + "/<arch>"
    url: str  # the arch's APKINDEX.tar.gz
    architecture: str


@dataclass(frozen=True)
class Lockfile:
    spec_name: Optional[str]  # None: the lock has no `config` (pre-0.13 apko) or no name in it
    spec_checksum: Optional[str]  # "sha256-<base64>" (apko's encoding); None when not recorded
    keys: Tuple[LockedKey, ...]
    repositories: Tuple[LockedRepository, ...]
    packages: Tuple[LockedPackage, ...]  # grouped by architecture, each group in install order
    build_repositories: Tuple[LockedRepository, ...] = ()  # apko: used to resolve, not in the image
    runtime_repositories: Tuple[LockedRepository, ...] = ()  # apko: in the image, not used to resolve

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

    def keyring(self) -> "Keyring":
        from ocibuild.apk.signing import Keyring

        missing = [k.name for k in self.keys if k.pem is None]
        if missing:
            raise OciBuildError(
                f"lock: key {missing[0]} has no `content` (a lock from apko before 0.13), so packages "
                f"cannot be verified; {_RELOCK}"
            )
        return Keyring.from_pems({k.signing_name: k.pem for k in self.keys if k.pem is not None})

    def matches_spec(self, spec_bytes: bytes) -> Optional[bool]:
        """Whether `config.checksum` is that of these spec bytes; None when the lock records none."""
        if self.spec_checksum is None:
            return None
        return self.spec_checksum == spec_lock_checksum(spec_bytes)

    def staleness(self, lock_path: str, spec_bytes: bytes, *, strict: bool) -> Optional[str]:
        """Why the lock at `lock_path` does not fit the spec, or None if it does. The one staleness
        check (the plugin's before a build, apk-lock --check's). `strict`: a lock recording no spec
        checksum (an apko lock before 0.13) is stale too; otherwise it is trusted."""
        fresh = self.matches_spec(spec_bytes)
        if fresh is None and strict:
            return f"{lock_path} records no spec checksum: {RELOCK} to rewrite it"
        if fresh is False:
            return (
                f"{lock_path} is stale: {self.spec_name or 'its spec'} changed since it was locked; {RELOCK}"
            )
        return None

    def subset(self, arch: str, packages: Sequence[LockedPackage]) -> "Lockfile":
        """A lock of just these packages of `arch` and the keys: everything a layer build reads, and
        nothing else, so that a layer's inputs change only when its own packages do."""
        return Lockfile(
            spec_name=None,
            spec_checksum=None,
            keys=self.keys,
            repositories=(),
            packages=tuple(p for p in packages if p.architecture == arch),
        )


def select_packages(locked: Sequence[LockedPackage], wanted: Sequence[str], arch: str) -> List[LockedPackage]:
    """The wanted packages and, transitively, their dependencies, in the lock's order (all when
    `wanted` is empty). The one closure function: the layer builder installs exactly these, and the
    Pants rule gives the layer's process exactly these as inputs.

    The lock was resolved as a whole, so each dependency (the lock's `dependencies` of a package)
    is satisfied by a package of the lock: one of that name, else one whose `provides` match.
    """
    if not wanted:
        return list(locked)
    by_name = {p.name: p for p in locked}
    queue: List[LockedPackage] = []
    for name in wanted:
        if name not in by_name:
            raise OciBuildError(
                f"package {name} is not in the lock for {arch}; add it to the spec and {RELOCK}"
            )
        queue.append(by_name[name])
    unrecorded = [p.name for p in locked if p.dependencies is None or p.provides is None]
    if unrecorded:
        raise OciBuildError(
            f"lock: package {unrecorded[0]} ({arch}) has no recorded dependencies/provides (a lock written "
            f"by apko?), so a layer of some packages cannot find their dependencies; {_RELOCK}"
        )
    chosen: Dict[str, LockedPackage] = {}
    while queue:
        pkg = queue.pop(0)
        if pkg.name in chosen:
            continue
        chosen[pkg.name] = pkg
        for text in pkg.dependencies or ():
            dep = parse_dependency(text)
            if dep.conflict:
                continue
            provider = _provider(dep, locked)
            if provider is None:
                raise OciBuildError(
                    f"package {pkg.name} depends on {text}, which no package of the lock for {arch} provides;"
                    f" the lock is inconsistent, {RELOCK}"
                )
            queue.append(provider)
    return [p for p in locked if p.name in chosen]


def _provider(dep, locked: Sequence[LockedPackage]) -> Optional[LockedPackage]:
    for p in locked:
        if p.name == dep.name and (dep.op is None or dep.matches_version(p.version)):
            return p
    for p in locked:
        for text in p.provides or ():
            provided = parse_dependency(text)
            if provided.name != dep.name:
                continue
            if dep.op is None or (provided.version is not None and dep.matches_version(provided.version)):
                return p
    return None


# ---- writing -------------------------------------------------------------------------------------


def _section_json(section: LockedSection) -> Dict[str, Any]:
    return {"range": section.http_range, "checksum": section.checksum}


def _package_json(pkg: LockedPackage) -> Dict[str, Any]:
    # apko's keys in lock.go's order, then ours (left out when not recorded).
    doc: Dict[str, Any] = {
        "name": pkg.name,
        "url": pkg.url,
        "version": pkg.version,
        "architecture": pkg.architecture,
        "signature": _section_json(pkg.signature),
        "control": _section_json(pkg.control),
        "data": _section_json(pkg.data),
        "checksum": pkg.checksum,
    }
    for key in ("sha256", "size"):
        if getattr(pkg, key) is not None:
            doc[key] = getattr(pkg, key)
    for key in ("replaces", "dependencies", "provides"):
        if getattr(pkg, key) is not None:
            doc[key] = list(getattr(pkg, key))
    return doc


def _repo_json(repo: LockedRepository) -> Dict[str, Any]:
    return {"name": repo.name, "url": repo.url, "architecture": repo.architecture}


def _key_json(key: LockedKey) -> Dict[str, Any]:
    doc = {"name": key.name, "url": key.url}
    if key.pem is not None:
        doc["content"] = key.pem.decode("ascii")
    return doc


def dump_lockfile(lock: Lockfile) -> str:
    """Canonical JSON text: lock.go's key order, 2-space indent, ASCII, trailing newline."""
    doc: Dict[str, Any] = {"version": _LOCKFILE_VERSION}
    config = {k: v for k, v in (("name", lock.spec_name), ("checksum", lock.spec_checksum)) if v is not None}
    if config:
        doc["config"] = config
    doc["contents"] = {
        "keyring": [_key_json(k) for k in lock.keys],
        "build_repositories": [_repo_json(r) for r in lock.build_repositories],
        "runtime_repositories": [_repo_json(r) for r in lock.runtime_repositories],
        "repositories": [_repo_json(r) for r in lock.repositories],
        "packages": [_package_json(p) for p in lock.packages],
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


# ---- reading: the lock as written, for the core's validator --------------------------------------


def _malformed(value: str, expected: str = "") -> str:
    return f"has a malformed value {value!r}" + (f", expected {expected}" if expected else "")


def _section_checksum_problem(text: str) -> Optional[str]:
    match = _SECTION_CHECKSUM.match(text)
    if not match or _b64_digest(match.group(2), match.group(1)) is None:
        return _malformed(text, "sha1-<base64> or sha256-<base64>")
    return None


@dataclass(frozen=True)
class _SectionJson:
    range: NonEmptyStr  # "bytes=<first>-<last>", inclusive
    checksum: NonEmptyStr

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        match = _RANGE.match(self.range)
        if not match or int(match.group(2)) < int(match.group(1)):
            return ("range", f"has a malformed range {self.range!r}")
        return first_problem([("checksum", _section_checksum_problem(self.checksum))])

    def section(self) -> LockedSection:
        match = _RANGE.match(self.range)
        assert match is not None  # invalid_reason() checked it
        return LockedSection(int(match.group(1)), int(match.group(2)) + 1, self.checksum)


@dataclass(frozen=True)
class _PackageJson:
    # apko's keys
    name: NonEmptyStr
    url: NonEmptyStr
    version: NonEmptyStr
    architecture: NonEmptyStr
    signature: _SectionJson
    control: _SectionJson
    data: _SectionJson
    checksum: Optional[NonEmptyStr] = None  # None: a lock from apko before 0.13
    # ours
    sha256: Optional[NonEmptyStr] = None
    size: Optional[int] = None
    replaces: Optional[Tuple[NonEmptyStr, ...]] = None
    dependencies: Optional[Tuple[NonEmptyStr, ...]] = None
    provides: Optional[Tuple[NonEmptyStr, ...]] = None

    def _control_q1(self) -> Optional[str]:
        """ "Q1" + the control member's sha1 (the index's C: line), if it is a sha1."""
        algorithm, _, digest_b64 = self.control.checksum.partition("-")
        return "Q1" + digest_b64 if algorithm == "sha1" else None

    def invalid_reason(self) -> Union[None, str, Tuple[str, str]]:
        problem = first_problem(
            [
                (
                    "checksum",
                    _malformed(self.checksum) if self.checksum and not _Q1.match(self.checksum) else None,
                ),
                (
                    "sha256",
                    _malformed(self.sha256) if self.sha256 and not _SHA256_HEX.match(self.sha256) else None,
                ),
                (
                    "size",
                    f"must be a non-negative integer, got {self.size}" if (self.size or 0) < 0 else None,
                ),
            ]
        )
        if problem:
            return problem
        control_q1 = self._control_q1()
        if self.checksum is not None and control_q1 is not None and self.checksum != control_q1:
            return ("checksum", f"is {self.checksum}, not that of the control member of {self.name}")
        if self.checksum is None and control_q1 is None:
            return ("checksum", f"is missing and the control checksum of {self.name} is not sha1")
        if (self.sha256 is None) != (self.size is None):
            return f"has one of `sha256` and `size` of {self.name} without the other"
        signature, control, data = self.signature.section(), self.control.section(), self.data.section()
        if not (
            signature.start == 0
            and signature.end == control.start
            and control.end == data.start
            and (self.size is None or data.end == self.size)
        ):
            size = f"its {self.size} bytes" if self.size is not None else "the file"
            return f"has signature/control/data ranges of {self.name} that do not tile {size}"
        return None

    def package(self) -> LockedPackage:
        checksum = self.checksum if self.checksum is not None else self._control_q1()
        assert checksum is not None  # invalid_reason() checked it
        return LockedPackage(
            name=self.name,
            version=self.version,
            architecture=self.architecture,
            url=self.url,
            checksum=checksum,
            signature=self.signature.section(),
            control=self.control.section(),
            data=self.data.section(),
            sha256=self.sha256,
            size=self.size,
            replaces=self.replaces,
            dependencies=self.dependencies,
            provides=self.provides,
        )


@dataclass(frozen=True)
class _KeyJson:
    name: NonEmptyStr
    url: NonEmptyStr
    content: Optional[NonEmptyStr] = None  # the PEM; None in locks from apko before 0.13
    data: Optional[str] = None  # refused: older ocibuild locks' name of `content`

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        if self.data is not None:
            return ("data", "is the older ocibuild name of the key's PEM; apko names it `content`")
        return None

    def key(self) -> LockedKey:
        return LockedKey(
            self.name, self.url, self.content.encode("utf-8") if self.content is not None else None
        )


@dataclass(frozen=True)
class _RepositoryJson:
    name: NonEmptyStr
    url: NonEmptyStr
    architecture: NonEmptyStr

    def repository(self) -> LockedRepository:
        return LockedRepository(self.name, self.url, self.architecture)


@dataclass(frozen=True)
class _ContentsJson:
    keyring: Tuple[_KeyJson, ...]
    repositories: Tuple[_RepositoryJson, ...]
    packages: Tuple[_PackageJson, ...]  # grouped by architecture, each group in install order
    build_repositories: Tuple[_RepositoryJson, ...] = ()
    runtime_repositories: Tuple[_RepositoryJson, ...] = ()

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        names = [k.key().signing_name for k in self.keyring]
        if len(set(names)) != len(names):
            return ("keyring", "names a key twice")
        seen = set()
        archs: List[str] = []  # in the order their groups start
        for pkg in self.packages:
            if (pkg.architecture, pkg.name) in seen:
                return ("packages", f"lists {pkg.name} ({pkg.architecture}) twice")
            seen.add((pkg.architecture, pkg.name))
            if archs and archs[-1] != pkg.architecture and pkg.architecture in archs:
                return ("packages", f"does not group the packages of {pkg.architecture} together")
            if not archs or archs[-1] != pkg.architecture:
                archs.append(pkg.architecture)
        return None


@dataclass(frozen=True)
class _ConfigJson:
    name: Optional[NonEmptyStr] = None
    checksum: Optional[NonEmptyStr] = None  # "sha256-<base64>" of the spec

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        checksum = self.checksum
        if checksum is not None and (
            not checksum.startswith("sha256-") or _b64_digest(checksum[7:], "sha256") is None
        ):
            return ("checksum", _malformed(checksum, "sha256-<base64> (older ocibuild locks wrote hex)"))
        return None


@dataclass(frozen=True)
class _VersionJson:
    """Checked first: a lock of another version may have other keys."""

    extra_keys_ignored = True
    version: str

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        if self.version != _LOCKFILE_VERSION:
            return (
                "version",
                f"is {self.version!r}, an unsupported lockfile version; expected {_LOCKFILE_VERSION!r}",
            )
        return None


@dataclass(frozen=True)
class _LockJson:
    version: str
    contents: _ContentsJson
    config: Optional[_ConfigJson] = None  # None: a lock from apko before 0.13


def _public_pem_problem(pem: bytes) -> Optional[str]:
    from ocibuild.apk.signing import public_pem_problem

    return public_pem_problem(pem)


def load_lockfile(text: str, origin: str, check_keys: bool = True) -> Lockfile:
    """Read a lock written by us or by apko (any version writing "v1").

    `check_keys=False` skips parsing each key's PEM as an RSA key (which needs `cryptography`): for
    the Pants plugin, which only chooses downloads from the lock; the core's Processes that read the
    lock check its keys (and the packages' signatures) themselves."""
    doc = load_json(text, origin)
    try:
        decode(_VersionJson, doc, origin)
        lock = decode(_LockJson, doc, origin)
    except OciBuildError as e:  # strict: a lock is machine-written, so anything unexpected means damage
        raise OciBuildError(f"{e}; {_RELOCK}") from None
    keys = tuple(k.key() for k in lock.contents.keyring)
    for i, key in enumerate(keys):
        problem = _public_pem_problem(key.pem) if check_keys and key.pem is not None else None
        if problem:
            raise OciBuildError(
                f"{origin}: `contents.keyring[{i}].content` is not a usable key: {problem}; {_RELOCK}"
            )
    config = lock.config or _ConfigJson()
    return Lockfile(
        spec_name=config.name,
        spec_checksum=config.checksum,
        keys=keys,
        repositories=tuple(r.repository() for r in lock.contents.repositories),
        packages=tuple(p.package() for p in lock.contents.packages),
        build_repositories=tuple(r.repository() for r in lock.contents.build_repositories),
        runtime_repositories=tuple(r.repository() for r in lock.contents.runtime_repositories),
    )
