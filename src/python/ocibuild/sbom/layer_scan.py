"""SBOM facts read back from a layer blob: the APKs of its `lib/apk/db/installed` (completed from the
lock), its `/etc/os-release`, and the sha256/sha1 of every regular file (for files layers).

The layer is what the image ships, so reading it (rather than trusting the build's inputs) keeps the
SBOM in step with what scanners see.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import shlex
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

from ocibuild.apk.index import IndexEntry, parse_apkindex
from ocibuild.apk.version import parse_dependency
from ocibuild.common.compression import DECOMPRESSION_ERRORS, is_zstd, open_zstd
from ocibuild.errors import OciBuildError
from ocibuild.sbom.facts import APK, FILES, ApkPackageFacts, FileFacts, LayerFacts, OsRelease

INSTALLED_DB = "lib/apk/db/installed"
OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")  # os-release(5): the first that exists
_CHUNK = 1 << 20


class LockFacts(Protocol):
    """What an SBOM takes from the lock for one .apk: an ocibuild.apk.lockfile.LockedPackage, or the
    `packages` apk-layer records in layer.json (ocibuild.sbom.build.LockedApk)."""

    @property
    def name(self) -> str:
        ...

    @property
    def version(self) -> str:
        ...

    @property
    def checksum(self) -> str:
        ...

    @property
    def sha256(self) -> Optional[str]:
        ...

    @property
    def url(self) -> Optional[str]:
        ...


@dataclass(frozen=True)
class LayerScan:
    installed_db: Optional[bytes]  # None: the layer has no apk database
    os_release: Optional[bytes]  # None: no os-release file (or a link leaving the layer)
    files: Tuple[FileFacts, ...]  # regular files and hard links, sorted by path


def _normal(name: str) -> str:
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def _open_layer(blob: Path) -> BinaryIO:
    """The tar stream of a layer blob, told by its magic: gzip.open reads every gzip member (our layers
    have one per 1 MiB of tar; tarfile's own `r|gz` stops after the first); zstd
    (`compression="zstd"`); else a plain tar."""
    with open(blob, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(blob, "rb")  # type: ignore[return-value]
    if is_zstd(magic):
        return open_zstd(str(blob))
    return open(blob, "rb")


def scan_layer(blob: Path) -> LayerScan:
    """Read a layer blob (a tar, gzip'd or not) once."""
    files: Dict[str, FileFacts] = {}
    symlinks: Dict[str, str] = {}
    hardlinks: Dict[str, str] = {}
    wanted: Dict[str, bytes] = {}
    try:
        with _open_layer(blob) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                path = _normal(member.name)
                if member.issym():
                    symlinks[path] = member.linkname
                elif member.islnk():
                    hardlinks[path] = _normal(member.linkname)
                elif member.isfile():
                    stream = tar.extractfile(member)
                    assert stream is not None  # a regular file always has a stream
                    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
                    keep = path == INSTALLED_DB or path in OS_RELEASE_PATHS
                    content: List[bytes] = []
                    for chunk in iter(lambda: stream.read(_CHUNK), b""):  # type: ignore[union-attr]
                        sha256.update(chunk)
                        sha1.update(chunk)
                        if keep:
                            content.append(chunk)
                    files[path] = FileFacts(path, sha256.hexdigest(), sha1.hexdigest())
                    if keep:
                        wanted[path] = b"".join(content)
    except (OSError, tarfile.TarError, EOFError, *DECOMPRESSION_ERRORS) as e:
        raise OciBuildError(f"{blob}: cannot read the layer as a tar ({e}): rebuild the layer") from None
    for path, target in sorted(hardlinks.items()):
        if target in files:
            files[path] = FileFacts(path, files[target].sha256, files[target].sha1)
            if path in (INSTALLED_DB,) + OS_RELEASE_PATHS and target in wanted:
                wanted[path] = wanted[target]
    return LayerScan(
        installed_db=wanted.get(INSTALLED_DB),
        os_release=_os_release(wanted, symlinks),
        files=tuple(files[p] for p in sorted(files)),
    )


def _os_release(contents: Mapping[str, bytes], symlinks: Mapping[str, str]) -> Optional[bytes]:
    """/etc/os-release, following its symlink (Alpine: a file; others: -> ../usr/lib/os-release)."""
    for path in OS_RELEASE_PATHS:
        for _ in range(8):  # a few hops; a loop or a link out of the layer ends the search
            if path in contents:
                return contents[path]
            if path not in symlinks:
                break
            target = symlinks[path]
            base = "" if target.startswith("/") else posixpath.dirname(path)
            path = _normal(posixpath.join(base, target))
    return None


def parse_os_release(data: bytes, origin: str) -> Optional[OsRelease]:
    """os-release(5): `KEY=value` lines, values in shell quoting; None without ID or VERSION_ID."""
    fields: Dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            raise OciBuildError(f"{origin}: os-release line {line[:60]!r} has unbalanced quotes") from None
        fields[key.strip()] = " ".join(words)
    if not fields.get("ID") or not fields.get("VERSION_ID"):
        return None
    return OsRelease(
        id=fields["ID"],
        version_id=fields["VERSION_ID"],
        name=fields.get("NAME", ""),
        pretty_name=fields.get("PRETTY_NAME", ""),
        home_url=fields.get("HOME_URL", ""),
    )


def _dependency_names(entry: IndexEntry, providers: Mapping[str, str]) -> Tuple[str, ...]:
    names = set()
    for text in entry.depends:
        dep = parse_dependency(text)
        if dep.conflict:
            continue
        provider = providers.get(dep.name)
        if provider is not None and provider != entry.name:
            names.add(provider)
    return tuple(sorted(names))


def apk_packages(
    installed_db: bytes,
    locked: Sequence[LockFacts],
    origin: str,
    other_providers: Optional[Mapping[str, str]] = None,
) -> Tuple[ApkPackageFacts, ...]:
    """The packages of an installed database, sorted by name, each completed from the lock entry of
    the same name, version and control checksum (sha256 and URL of the .apk; left None when absent).
    A dependency resolves to the package of that name or the one providing it (`p:`), in this database
    or `other_providers` (name or provided name -> package name, e.g. from the base image's layers);
    one nothing provides (a file of another layer) is not listed."""
    try:
        text = installed_db.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OciBuildError(f"{origin}: {INSTALLED_DB} is not UTF-8 ({e}): rebuild the layer") from None
    entries = parse_apkindex(text, f"{origin}:{INSTALLED_DB}")
    providers = dict(other_providers or {})
    providers.update(package_providers(entries))
    by_key = {(p.name, p.version, p.checksum): p for p in locked}
    out = []
    for entry in sorted(entries, key=lambda e: e.name):
        lock = by_key.get((entry.name, entry.version, entry.checksum))
        out.append(
            ApkPackageFacts(
                name=entry.name,
                version=entry.version,
                architecture=entry.architecture,
                license=entry.license,
                origin=entry.origin,
                maintainer=entry.maintainer,
                url=entry.url,
                description=entry.description,
                control_checksum=entry.checksum,
                size=entry.size or None,
                apk_sha256=lock.sha256 if lock is not None else None,
                download_location=lock.url if lock is not None else None,
                depends=_dependency_names(entry, providers),
            )
        )
    return tuple(out)


def db_providers(installed_db: bytes, origin: str) -> Dict[str, str]:
    """`package_providers` of an installed database."""
    return package_providers(
        parse_apkindex(installed_db.decode("utf-8", "replace"), f"{origin}:{INSTALLED_DB}")
    )


def package_providers(entries: Sequence[IndexEntry]) -> Dict[str, str]:
    """name or provided name (`so:libc.musl-x86_64.so.1`, `cmd:sh`) -> the package's name."""
    providers: Dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        for text in entry.provides:
            providers.setdefault(parse_dependency(text).name, entry.name)
    for entry in entries:
        providers[entry.name] = entry.name  # a real package wins over a virtual of the same name
    return providers


@dataclass(frozen=True)
class LayerSource:
    """A layer of the image as the build has it: its blob file and manifest/config digests."""

    blob: Path
    digest: str
    diff_id: str
    created_by: str = ""
    from_base: bool = False


def image_layers(
    layers: Sequence[LayerSource], locked: Sequence[LockFacts] = ()
) -> Tuple[Tuple[LayerFacts, ...], Optional[OsRelease]]:
    """Facts of the image's layers, bottom first: a layer with an apk database is an APK layer (its
    packages completed from `locked`, dependencies resolved in it and the layers below), any other a
    files layer; and the os-release of the topmost layer that has one (what the container sees)."""
    facts: List[LayerFacts] = []
    os_release: Optional[OsRelease] = None
    providers: Dict[str, str] = {}
    for layer in layers:
        scan = scan_layer(layer.blob)
        if scan.installed_db is not None:
            packages = apk_packages(scan.installed_db, locked, str(layer.blob), providers)
            providers.update(db_providers(scan.installed_db, str(layer.blob)))
            facts.append(
                LayerFacts(
                    layer.digest,
                    layer.diff_id,
                    APK,
                    packages=packages,
                    created_by=layer.created_by,
                    from_base=layer.from_base,
                )
            )
        else:
            facts.append(
                LayerFacts(
                    layer.digest,
                    layer.diff_id,
                    FILES,
                    files=scan.files,
                    created_by=layer.created_by,
                    from_base=layer.from_base,
                )
            )
        if scan.os_release is not None:
            os_release = parse_os_release(scan.os_release, f"{layer.blob}: os-release") or os_release
    return tuple(facts), os_release
