"""Build one architecture's layer of APK packages from a lockfile: the core of `apk-layer`.

    lock + arch + downloaded .apk files  ->  layer.tar.gz + descriptor (diff_id, digest, size, packages)

Every package is verified again against the lock (size, sha256, signature by a key embedded in the
lock, control checksum, data hash) before a byte of it is used, then installed in the lock's order
into an in-memory root (ocibuild.layer.rootfs, which holds the safety rules), like apk would:
- install scripts are never run; a package having any is refused unless listed in skip_scripts_of;
- lib/apk/db/installed is written as apk-tools writes it (ocibuild.layer.installed_db), so that
  scanners (Syft, Trivy) see the packages and their files; lib/apk/db/triggers is written empty
  (no trigger is pending: the scripts were skipped) and no scripts.tar is written (apk treats a
  missing one as empty); etc/apk/world lists the selected packages and etc/apk/arch the arch, so
  that an `apk add` in a derived image does not take the other packages for orphans;
- `accounts` (apko's format) are merged into etc/passwd and etc/group, home dirs are created;
- /tmp always exists with mode 1777.
The mtime of every entry is source_date_epoch if given, else the newest build time of the
packages in the layer (so that it only changes when the packages do), else 0.
"""

from __future__ import annotations

import os
import posixpath
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urlparse

from ocibuild.apk.archive import ApkArchive
from ocibuild.apk.checksums import verify_package
from ocibuild.apk.lockfile import LockedPackage, Lockfile, select_packages
from ocibuild.apk.pkginfo import PkgInfo
from ocibuild.apk.signing import Keyring
from ocibuild.apk.version import parse_dependency
from ocibuild.common.atomic import write_bytes_atomically
from ocibuild.errors import OciBuildError
from ocibuild.layer import accounts as accounts_mod
from ocibuild.layer.apk_contents import install_scripts, read_data_tar, scripts_error
from ocibuild.layer.installed_db import InstalledPackage, render_installed
from ocibuild.layer.rootfs import RootFs
from ocibuild.layer.tarball import DEFAULT_GZIP_LEVEL, DIR, FILE, LayerBlob, TarEntry, write_layer

__all__ = [
    "DESCRIPTOR_SCHEMA",
    "ApkLayerOptions",
    "LayerPackage",
    "ApkLayerDescriptor",
    "AssembledRoot",
    "assemble_root",
    "build_apk_layer",
]

DESCRIPTOR_SCHEMA = "ocibuild.apk-layer.v1"
# paths the builder writes itself; a package shipping one of them is refused
_GENERATED_FILES = ("lib/apk/db/installed", "lib/apk/db/triggers", "etc/apk/world", "etc/apk/arch")
# Packages read and verified ahead of the install loop (machines building layers have >= 2 cores),
# at most this many ahead (each held decompressed in memory until installed).
_READ_THREADS = 2
_READ_AHEAD = 4


@dataclass(frozen=True)
class ApkLayerOptions:
    arch: str
    packages: Tuple[str, ...] = ()  # subset of the lock (with its dependencies); empty: all
    accounts: Optional[accounts_mod.Accounts] = None
    source_date_epoch: Optional[int] = None
    allow_setuid: bool = False
    skip_scripts_of: Tuple[str, ...] = ()  # packages whose install scripts are safe to skip
    gzip_level: int = DEFAULT_GZIP_LEVEL


@dataclass(frozen=True)
class LayerPackage:
    name: str
    version: str
    architecture: str
    checksum: str
    sha256: Optional[str] = None  # the lock's sha256 of the .apk and its URL: what the image's SBOM
    url: Optional[str] = None  # records (docs/sbom.md), as the image build has no lock


@dataclass(frozen=True)
class ApkLayerDescriptor:
    architecture: str
    blob: LayerBlob
    mtime: int
    packages: Tuple[LayerPackage, ...]

    def to_json(self) -> str:
        return self.blob.descriptor_json(
            DESCRIPTOR_SCHEMA,
            self.mtime,
            architecture=self.architecture,
            packages=[
                {
                    "name": p.name,
                    "version": p.version,
                    "architecture": p.architecture,
                    "checksum": p.checksum,
                    "sha256": p.sha256,
                    "url": p.url,
                }
                for p in self.packages
            ],
        )


@dataclass
class AssembledRoot:
    """The layer's contents before they are written: what tests and the image code may inspect."""

    rootfs: RootFs
    installed: List[InstalledPackage] = field(default_factory=list)
    mtime: int = 0


def _package_file_name(pkg: LockedPackage) -> str:
    """Packages are found in the packages dir by the basename of their lock URL."""
    name = posixpath.basename(unquote(urlparse(pkg.url).path))
    if not name or name in (".", ".."):
        raise OciBuildError(f"lock: package {pkg.name}: URL {pkg.url} does not end in a file name")
    return name


def _lock_replaces(files: "_PackageFiles") -> Callable[[LockedPackage], Sequence[str]]:
    """A package's `replaces`: the lock's, else (a lock written by apko) its verified .PKGINFO's."""
    return lambda p: p.replaces if p.replaces is not None else files.get(p).info.replaces


def _replaces_fn(
    packages: Sequence[LockedPackage], replaces_of: Callable[[LockedPackage], Sequence[str]]
) -> Callable[[str, str], bool]:
    by_name = {p.name: p for p in packages}
    parsed = {p.name: [parse_dependency(r) for r in replaces_of(p)] for p in packages}

    def replaces(a: str, b: str) -> bool:
        other = by_name[b]
        return any(
            d.name == b and not d.conflict and (d.op is None or d.matches_version(other.version))
            for d in parsed[a]
        )

    return replaces


@dataclass(frozen=True)
class _Verified:
    archive: ApkArchive
    info: PkgInfo
    file_size: int
    origin: str


@dataclass
class _Loaded:
    verified: _Verified
    data_tar: Optional[bytes]  # the data member, decompressed; dropped once installed (memory)


class _PackageFiles:
    """The lock's .apk files in the packages dir, each read, verified against the lock and its data
    member decompressed once, in worker threads, at most _READ_AHEAD packages ahead of the install
    loop: hashing, the signature check and inflating run in C without the GIL, so they overlap with
    installing the packages before (the layer's bytes do not depend on it: results are taken in the
    lock's order, and so is the first error reported)."""

    def __init__(self, packages_dir: str, keyring: Keyring, arch: str, pool: ThreadPoolExecutor) -> None:
        self._dir = packages_dir
        self._keyring = keyring
        self._arch = arch
        self._pool = pool
        self._loads: Dict[str, "Future[_Loaded]"] = {}

    def prefetch(self, packages: Sequence[LockedPackage]) -> None:
        """Start loading `packages`: the first (needed next) first, then the biggest, which takes the
        longest to verify and inflate (one worker starts on it while the other loads the next ones)."""
        ahead = packages[1:]
        biggest = sorted(ahead, key=lambda p: -(p.size or 0))[:1]
        for pkg in [*packages[:1], *biggest, *ahead]:
            if pkg.name not in self._loads:
                self._loads[pkg.name] = self._pool.submit(self._load, pkg)

    def _loaded(self, pkg: LockedPackage) -> _Loaded:
        self.prefetch([pkg])
        return self._loads[pkg.name].result()

    def get(self, pkg: LockedPackage) -> _Verified:
        return self._loaded(pkg).verified

    def take_data_tar(self, pkg: LockedPackage) -> Optional[bytes]:
        """The decompressed data member, once: the reference here is dropped."""
        loaded = self._loaded(pkg)
        data_tar, loaded.data_tar = loaded.data_tar, None
        return data_tar

    def _load(self, pkg: LockedPackage) -> _Loaded:
        path = os.path.join(self._dir, _package_file_name(pkg))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise OciBuildError(
                f"package {pkg.name}: {path} is missing; it must be fetched from {pkg.url}"
            ) from None
        origin = f"{_package_file_name(pkg)} ({pkg.name} {pkg.version})"
        archive, info = verify_package(
            data,
            origin=origin,
            keyring=self._keyring,
            expected_checksum=pkg.checksum,
            expected_sha256=pkg.sha256,
            expected_size=pkg.size,
            expected_members=pkg.members,
            inflate_data=True,
        )
        if (info.pkgname, info.pkgver) != (pkg.name, pkg.version):
            raise OciBuildError(
                f"{origin}: the package says it is {info.pkgname} {info.pkgver}; the lock is inconsistent, re-lock"
            )
        if info.arch not in (self._arch, "noarch"):
            raise OciBuildError(f"{origin}: built for {info.arch}, not {self._arch}")
        return _Loaded(_Verified(archive, info, len(data), origin), archive.take_data_tar())


def assemble_root(lock: Lockfile, packages_dir: str, options: ApkLayerOptions) -> AssembledRoot:
    """Verify and install the packages, then add accounts, /tmp and apk's database."""
    locked = lock.packages_for(options.arch)
    if not locked:
        raise OciBuildError(
            f"the lock has no packages for {options.arch}; add the arch to the spec and re-lock"
        )
    selected = select_packages(locked, options.packages, options.arch)
    pool = ThreadPoolExecutor(max_workers=_READ_THREADS, thread_name_prefix="apk-read")
    try:
        files = _PackageFiles(packages_dir, lock.keyring(), options.arch, pool)
        return _install(files, selected, options)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _install(
    files: _PackageFiles, selected: Sequence[LockedPackage], options: ApkLayerOptions
) -> AssembledRoot:
    replaces = _replaces_fn(selected, _lock_replaces(files))
    skip = set(options.skip_scripts_of)
    unknown_skips = sorted(skip - {p.name for p in selected})
    if unknown_skips:
        raise OciBuildError(f"skip_scripts_of names {unknown_skips[0]}, which is not a package of this layer")
    root = AssembledRoot(RootFs())
    build_times = []
    for index, pkg in enumerate(selected):
        files.prefetch(selected[index : index + 1 + _READ_AHEAD])
        verified = files.get(pkg)
        scripts = install_scripts(verified.archive.control_files)
        if scripts and pkg.name not in skip:
            raise scripts_error(pkg.name, scripts)
        data_tar = files.take_data_tar(pkg)
        if data_tar is None:
            raise OciBuildError(f"{verified.origin}: has no data member")
        contents = read_data_tar(data_tar, pkg.name, allow_setuid=options.allow_setuid)
        del data_tar
        for pf in contents:
            if pf.entry.path in _GENERATED_FILES:
                raise OciBuildError(
                    f"package {pkg.name}: ships /{pf.entry.path}, which the layer builder writes itself"
                )
            root.rootfs.install(pf.entry, pkg.name, replaces)
        build_times.append(verified.info.builddate)
        root.installed.append(_installed_record(pkg, verified.info, verified.file_size, contents))
    root.mtime = (
        options.source_date_epoch if options.source_date_epoch is not None else max(build_times, default=0)
    )
    if options.accounts is not None:
        _apply_accounts(root.rootfs, options.accounts)
    _ensure_tmp(root.rootfs)
    world = options.packages or tuple(p.name for p in selected)
    _write_apk_database(root, options.arch, world)
    return root


def _installed_record(pkg: LockedPackage, info, package_size: int, files) -> InstalledPackage:
    return InstalledPackage(
        checksum=pkg.checksum,
        name=info.pkgname,
        version=info.pkgver,
        arch=pkg.architecture,  # apk records the repository's A: (noarch packages get the repo arch)
        package_size=package_size,
        installed_size=info.size,
        description=info.pkgdesc,
        url=info.url,
        license=info.license,
        origin=info.origin,
        maintainer=info.maintainer,
        build_time=info.builddate,
        commit=info.commit,
        provider_priority=info.provider_priority or 0,
        depends=tuple(info.depends),
        provides=tuple(info.provides),
        install_if=tuple(info.install_if),
        replaces=tuple(info.replaces),
        replaces_priority=info.replaces_priority or 0,
        files=tuple(files),
    )


def _ensure_dirs(rootfs: RootFs, path: str) -> None:
    """Create missing parent directories (0755 root) of `path`; refuse non-directories."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        node = rootfs.get(parent)
        if node is None:
            rootfs.put_generated(TarEntry(parent, DIR, 0o755))
        elif node.kind != DIR:
            raise OciBuildError(f"layer: /{parent} must be a directory but a package made it a {node.kind}")


def _set_file(rootfs: RootFs, path: str, content: bytes, mode: int = 0o644) -> None:
    existing = rootfs.get(path)
    if existing is None:
        _ensure_dirs(rootfs, path)
        rootfs.put_generated(TarEntry(path, FILE, mode, content=content))
    elif existing.kind == FILE:
        rootfs.update(TarEntry(path, FILE, existing.mode, existing.uid, existing.gid, content))
    else:
        raise OciBuildError(f"layer: /{path} is a {existing.kind} ({rootfs.owner(path)}); cannot write it")


def _file_content(rootfs: RootFs, path: str) -> Optional[bytes]:
    existing = rootfs.get(path)
    if existing is None:
        return None
    if existing.kind != FILE:
        raise OciBuildError(
            f"layer: /{path} is a {existing.kind} ({rootfs.owner(path)}), expected a regular file"
        )
    if existing.source is not None:
        with open(existing.source, "rb") as f:
            return f.read()
    return existing.content


def _apply_accounts(rootfs: RootFs, accounts: accounts_mod.Accounts) -> None:
    if accounts.groups:
        merged = accounts_mod.merge_group(_file_content(rootfs, "etc/group"), accounts.groups)
        _set_file(rootfs, "etc/group", merged)
    if accounts.users:
        merged = accounts_mod.merge_passwd(_file_content(rootfs, "etc/passwd"), accounts.users)
        _set_file(rootfs, "etc/passwd", merged)
    for user in accounts.users:
        home = user.home.strip("/")
        if not home:
            continue  # home "/": nothing to create
        rootfs.check_path(home, f"accounts: user {user.username}: home")
        existing = rootfs.get(home)
        if existing is None:
            _ensure_dirs(rootfs, home)
            rootfs.put_generated(TarEntry(home, DIR, 0o755, user.uid, user.gid))
        elif existing.kind != DIR:
            raise OciBuildError(
                f"accounts: user {user.username}: home /{home} is a {existing.kind} in the layer"
            )


def _ensure_tmp(rootfs: RootFs) -> None:
    existing = rootfs.get("tmp")
    if existing is None:
        rootfs.put_generated(TarEntry("tmp", DIR, 0o1777))
    elif existing.kind != DIR:
        raise OciBuildError(
            f"layer: /tmp is a {existing.kind} ({rootfs.owner('tmp')}); it must be a directory"
        )
    elif existing.mode != 0o1777:
        rootfs.update(TarEntry("tmp", DIR, 0o1777, existing.uid, existing.gid))


def _write_apk_database(root: AssembledRoot, arch: str, world: Sequence[str]) -> None:
    names = sorted(set(world))
    rootfs = root.rootfs
    files = {
        "lib/apk/db/installed": render_installed(root.installed, rootfs.owner),
        "lib/apk/db/triggers": b"",
        "etc/apk/world": "".join(n + "\n" for n in names).encode("utf-8"),
        "etc/apk/arch": (arch + "\n").encode("utf-8"),
    }
    for path, content in files.items():
        _ensure_dirs(rootfs, path)
        rootfs.put_generated(TarEntry(path, FILE, 0o644, content=content))


def build_apk_layer(
    lock: Lockfile,
    packages_dir: str,
    options: ApkLayerOptions,
    output_layer: str,
    output_descriptor: Optional[str] = None,
) -> ApkLayerDescriptor:
    """Build the layer and write it (and the descriptor, if asked) atomically."""
    root = assemble_root(lock, packages_dir, options)
    blob = write_layer(root.rootfs.tar_entries(), output_layer, mtime=root.mtime, level=options.gzip_level)
    locked = {(p.name, p.version, p.checksum): p for p in lock.packages_for(options.arch)}
    descriptor = ApkLayerDescriptor(
        architecture=options.arch,
        blob=blob,
        mtime=root.mtime,
        packages=tuple(
            LayerPackage(
                p.name,
                p.version,
                p.arch,
                p.checksum,
                locked[(p.name, p.version, p.checksum)].sha256,
                locked[(p.name, p.version, p.checksum)].url,
            )
            for p in sorted(root.installed, key=lambda p: p.name)
        ),
    )
    if output_descriptor is not None:
        write_bytes_atomically(output_descriptor, descriptor.to_json().encode("utf-8"))
    return descriptor
