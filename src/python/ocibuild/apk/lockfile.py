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
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote

from ocibuild.apk.version import parse_dependency
from ocibuild.common.digests import base64_checksum
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


# ---- reading (strict: a lock is machine-written, so anything unexpected means it was damaged) ------


class _Reader:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, what: str) -> "OciBuildError":
        return OciBuildError(f"{self.origin}: {where}: {what}; {_RELOCK}")

    def mapping(
        self, value: Any, where: str, keys: Sequence[str], optional: Sequence[str] = ()
    ) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        unknown = sorted(set(value) - set(keys) - set(optional))
        if unknown:
            hint = " (older ocibuild locks named the key's PEM `data`; apko names it `content`)"
            raise self.fail(where, f"unknown key {unknown[0]!r}" + (hint if unknown[0] == "data" else ""))
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

    def checksum(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        match = _SECTION_CHECKSUM.match(text)
        if not match or _b64_digest(match.group(2), match.group(1)) is None:
            raise self.fail(where, f"malformed value {text!r}, expected sha1-<base64> or sha256-<base64>")
        return text

    def section(self, value: Any, where: str) -> LockedSection:
        obj = self.mapping(value, where, ("range", "checksum"))
        match = _RANGE.match(self.text(obj["range"], f"{where}.range"))
        if not match or int(match.group(2)) < int(match.group(1)):
            raise self.fail(f"{where}.range", f"malformed range {obj['range']!r}")
        checksum = self.checksum(obj["checksum"], f"{where}.checksum")
        return LockedSection(int(match.group(1)), int(match.group(2)) + 1, checksum)

    def repositories(self, value: Any, where: str) -> Tuple[LockedRepository, ...]:
        repositories = []
        for i, repo in enumerate(self.items(value, where)):
            at = f"{where}[{i}]"
            repo = self.mapping(repo, at, ("name", "url", "architecture"))
            repositories.append(
                LockedRepository(*(self.text(repo[k], f"{at}.{k}") for k in ("name", "url", "architecture")))
            )
        return tuple(repositories)


_APKO_PACKAGE_KEYS = ("name", "url", "version", "architecture", "signature", "control", "data")
_OUR_PACKAGE_KEYS = ("checksum", "sha256", "size", "replaces", "dependencies", "provides")


def _key(r: _Reader, k: Any, where: str, check_keys: bool) -> LockedKey:
    k = r.mapping(k, where, ("name", "url"), ("content",))
    pem: Optional[bytes] = None
    if "content" in k:
        pem = r.text(k["content"], f"{where}.content").encode("utf-8")
        problem = _public_pem_problem(pem) if check_keys else None
        if problem:
            raise r.fail(f"{where}.content", problem)
    return LockedKey(r.text(k["name"], f"{where}.name"), r.text(k["url"], f"{where}.url"), pem)


def _public_pem_problem(pem: bytes) -> Optional[str]:
    from ocibuild.apk.signing import public_pem_problem

    return public_pem_problem(pem)


def _package(r: _Reader, p: Any, where: str) -> LockedPackage:
    p = r.mapping(p, where, _APKO_PACKAGE_KEYS, _OUR_PACKAGE_KEYS)
    name = r.text(p["name"], f"{where}.name")
    control = r.section(p["control"], f"{where}.control")
    algorithm, _, digest_b64 = control.checksum.partition("-")
    if "checksum" in p:
        checksum = r.text(p["checksum"], f"{where}.checksum", _Q1)
        if algorithm == "sha1" and checksum != "Q1" + digest_b64:
            raise r.fail(where, f"checksum {checksum} of {name} is not that of its control member")
    elif algorithm == "sha1":
        checksum = "Q1" + digest_b64  # apko before 0.13: the same sha1 of the control member
    else:
        raise r.fail(where, f"{name} has no `checksum` and its control checksum is not sha1")
    pkg = LockedPackage(
        name=name,
        version=r.text(p["version"], f"{where}.version"),
        architecture=r.text(p["architecture"], f"{where}.architecture"),
        url=r.text(p["url"], f"{where}.url"),
        checksum=checksum,
        signature=r.section(p["signature"], f"{where}.signature"),
        control=control,
        data=r.section(p["data"], f"{where}.data"),
        sha256=r.text(p["sha256"], f"{where}.sha256", _SHA256_HEX) if "sha256" in p else None,
        size=r.integer(p["size"], f"{where}.size") if "size" in p else None,
        replaces=r.strings(p["replaces"], f"{where}.replaces") if "replaces" in p else None,
        dependencies=r.strings(p["dependencies"], f"{where}.dependencies") if "dependencies" in p else None,
        provides=r.strings(p["provides"], f"{where}.provides") if "provides" in p else None,
    )
    if (pkg.sha256 is None) != (pkg.size is None):
        raise r.fail(where, f"{name} has one of `sha256` and `size` without the other")
    if not (
        pkg.signature.start == 0
        and pkg.signature.end == pkg.control.start
        and pkg.control.end == pkg.data.start
        and (pkg.size is None or pkg.data.end == pkg.size)
    ):
        size = f"its {pkg.size} bytes" if pkg.size is not None else "the file"
        raise r.fail(where, f"signature/control/data ranges of {name} do not tile {size}")
    return pkg


def load_lockfile(text: str, origin: str, check_keys: bool = True) -> Lockfile:
    """Read a lock written by us or by apko (any version writing "v1").

    `check_keys=False` skips parsing each key's PEM as an RSA key (which needs `cryptography`): for
    the Pants plugin, which only chooses downloads from the lock; the core's Processes that read the
    lock check its keys (and the packages' signatures) themselves."""
    r = _Reader(origin)
    doc = load_json(text, origin)
    doc = r.mapping(doc, "top level", ("version", "contents"), ("config",))
    if doc["version"] != _LOCKFILE_VERSION:
        raise r.fail(
            "version", f"unsupported lockfile version {doc['version']!r}, expected {_LOCKFILE_VERSION!r}"
        )
    config = r.mapping(doc.get("config", {}), "config", (), ("name", "checksum"))
    spec_checksum = None
    if "checksum" in config:
        spec_checksum = r.text(config["checksum"], "config.checksum")
        if not spec_checksum.startswith("sha256-") or _b64_digest(spec_checksum[7:], "sha256") is None:
            raise r.fail(
                "config.checksum",
                f"malformed value {spec_checksum!r}, expected sha256-<base64> (older ocibuild locks wrote hex)",
            )
    contents = r.mapping(
        doc["contents"],
        "contents",
        ("keyring", "repositories", "packages"),
        ("build_repositories", "runtime_repositories"),
    )
    lock = Lockfile(
        spec_name=r.text(config["name"], "config.name") if "name" in config else None,
        spec_checksum=spec_checksum,
        keys=tuple(
            _key(r, k, f"contents.keyring[{i}]", check_keys)
            for i, k in enumerate(r.items(contents["keyring"], "contents.keyring"))
        ),
        repositories=r.repositories(contents["repositories"], "contents.repositories"),
        packages=tuple(
            _package(r, p, f"contents.packages[{i}]")
            for i, p in enumerate(r.items(contents["packages"], "contents.packages"))
        ),
        build_repositories=r.repositories(
            contents.get("build_repositories", []), "contents.build_repositories"
        ),
        runtime_repositories=r.repositories(
            contents.get("runtime_repositories", []), "contents.runtime_repositories"
        ),
    )
    _check_consistency(lock, r)
    return lock


def _check_consistency(lock: Lockfile, r: _Reader) -> None:
    names = [k.signing_name for k in lock.keys]
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
