"""Turn a spec into a lockfile: fetch keys and signed indexes, resolve each architecture, then fetch
and verify every chosen package to pin its exact bytes."""

from __future__ import annotations

import os
import posixpath
import urllib.parse
from typing import Dict, List, Optional, Tuple

from ocibuild.apk.checksums import verify_package
from ocibuild.apk.fetch import Fetcher
from ocibuild.apk.index import ApkIndex, IndexEntry, load_index
from ocibuild.apk.lockfile import (
    LockedKey,
    LockedPackage,
    LockedRepository,
    LockedSection,
    Lockfile,
    spec_lock_checksum,
)
from ocibuild.apk.resolve import resolve
from ocibuild.apk.signing import Keyring, public_pem_problem
from ocibuild.apk.spec import ImageContentsSpec
from ocibuild.apk.version import compare_versions
from ocibuild.common.digests import base64_checksum, sha256_hex
from ocibuild.errors import OciBuildError

__all__ = ["lock", "describe_changes"]


def _is_url(text: str) -> bool:
    return "://" in text


def _section(
    raw: bytes, byte_range: Optional[Tuple[int, int]], algorithm: str, what: str, origin: str
) -> LockedSection:
    """apko's member checksum: "<algorithm>-<base64 digest>" of the raw (compressed) member."""
    if byte_range is None:
        raise OciBuildError(f"{origin}: the package has no {what} member; it is not a valid .apk")
    start, end = byte_range
    return LockedSection(start, end, base64_checksum(raw[start:end], algorithm))


def _check_key(pem: bytes, ref: str) -> None:
    problem = public_pem_problem(pem)
    if problem:
        raise OciBuildError(f"keyring entry {ref}: {problem}")


def _load_keys(spec: ImageContentsSpec, fetcher: Fetcher, base_dir: str) -> Tuple[LockedKey, ...]:
    keys: Dict[str, LockedKey] = {}
    for ref in spec.keyring:
        if _is_url(ref):
            # Checked inside the fetch: a mirror serving a broken key falls through to the next.
            pem = fetcher.fetch(ref, validate=lambda data, source: _check_key(data, ref))
            name = posixpath.basename(urllib.parse.urlsplit(ref).path)  # LockedKey.signing_name decodes it
        else:
            path = os.path.join(base_dir, ref)
            try:
                with open(path, "rb") as f:
                    pem = f.read()
            except OSError as e:
                raise OciBuildError(f"keyring entry {ref}: cannot read {path}: {e.strerror}") from None
            _check_key(pem, ref)
            name = os.path.basename(ref)
        if not name:
            raise OciBuildError(f"keyring entry {ref}: cannot tell the key's file name")
        if name in keys:
            raise OciBuildError(f"keyring entries {keys[name].url} and {ref} have the same key name {name}")
        keys[name] = LockedKey(name=name, url=ref, pem=pem)
    return tuple(keys.values())


def _repository(repo: str, arch: str) -> LockedRepository:
    url = f"{repo}/{arch}/APKINDEX.tar.gz"
    parsed = urllib.parse.urlsplit(repo)
    return LockedRepository(name=f"{parsed.netloc}{parsed.path}/{arch}", url=url, architecture=arch)


def _lock_package(
    entry: IndexEntry, arch: str, url: str, index_url: str, fetcher: Fetcher, keyring: Keyring
) -> LockedPackage:
    # Verified as part of the fetch: bytes that fail move on to the next mirror.
    data, (archive, info) = fetcher.fetch_validated(
        url,
        lambda data, source: verify_package(
            data,
            origin=url,
            keyring=keyring,
            expected_checksum=entry.checksum,
            expected_sha256=None,
            expected_size=entry.size,
            advice=f"the package does not match {index_url}; fix or refresh the mirror",
        ),
        size=entry.size,
    )
    if (info.pkgname, info.pkgver) != (entry.name, entry.version):
        raise OciBuildError(
            f"{url}: .PKGINFO says {info.pkgname}-{info.pkgver} but the index says {entry.name}-{entry.version}"
        )
    return LockedPackage(
        name=entry.name,
        version=entry.version,
        architecture=arch,  # the arch it was resolved for, also for "noarch" packages, so packages_for() finds it
        url=url,
        checksum=entry.checksum,
        signature=_section(data, archive.signature_range, "sha1", "signature", url),
        control=_section(data, archive.control_range, "sha1", "control", url),
        data=_section(data, archive.data_range, "sha256", "data", url),
        sha256=sha256_hex(data),
        size=len(data),
        replaces=tuple(info.replaces),
        dependencies=tuple(info.depends),
        provides=tuple(entry.provides),
    )


def lock(
    spec: ImageContentsSpec, spec_bytes: bytes, spec_name: str, fetcher: Fetcher, base_dir: str
) -> Lockfile:
    """Everything a build needs, pinned: keys (with their PEM), per-arch indexes and packages in install order."""
    keys = _load_keys(spec, fetcher, base_dir)
    keyring = Keyring.from_pems({k.signing_name: k.pem for k in keys if k.pem is not None})
    repositories: List[LockedRepository] = []
    packages: List[LockedPackage] = []
    for arch in spec.archs:
        indexes: List[ApkIndex] = []
        repo_of: Dict[int, LockedRepository] = {}  # id(IndexEntry) -> the repository it came from
        for repo in spec.repositories:
            locked_repo = _repository(repo, arch)
            repositories.append(locked_repo)
            _, index = fetcher.fetch_validated(
                locked_repo.url, lambda data, source: load_index(data, keyring, locked_repo.url)
            )
            indexes.append(index)
            for entry in index.entries:
                repo_of.setdefault(id(entry), locked_repo)
        for entry in resolve(indexes, spec.packages, arch):
            index_url = repo_of[id(entry)].url
            url = index_url[: -len("APKINDEX.tar.gz")] + entry.filename
            packages.append(_lock_package(entry, arch, url, index_url, fetcher, keyring))
    return Lockfile(
        spec_name=spec_name,
        spec_checksum=spec_lock_checksum(spec_bytes),
        keys=keys,
        repositories=tuple(repositories),
        packages=tuple(packages),
    )


def describe_changes(old: Optional[Lockfile], new: Lockfile) -> List[str]:
    """One readable line per package that was added, removed, up- or downgraded or rebuilt."""

    def by_key(lock: Optional[Lockfile]) -> Dict[Tuple[str, str], LockedPackage]:
        return {(p.architecture, p.name): p for p in (lock.packages if lock else ())}

    before, after = by_key(old), by_key(new)
    lines: List[str] = []
    for arch, name in sorted(set(before) | set(after)):
        a, b = before.get((arch, name)), after.get((arch, name))
        if a is None and b is not None:
            lines.append(f"added {name} {b.version} ({arch})")
        elif b is None and a is not None:
            lines.append(f"removed {name} {a.version} ({arch})")
        elif a is not None and b is not None and a != b:
            if a.version != b.version:
                verb = "upgraded" if compare_versions(b.version, a.version) > 0 else "downgraded"
                lines.append(f"{verb} {name} ({arch}): {a.version} -> {b.version}")
            elif (a.sha256, a.checksum, a.data) != (b.sha256, b.checksum, b.data):
                lines.append(f"rebuilt {name} {b.version} ({arch}): new package bytes")
            elif a.url != b.url:
                lines.append(f"moved {name} {b.version} ({arch}): {a.url} -> {b.url}")
            else:
                lines.append(f"updated {name} {b.version} ({arch}): lock metadata")
    if old is not None and [(k.name, k.pem) for k in old.keys] != [(k.name, k.pem) for k in new.keys]:
        lines.append("keyring changed")
    return lines
