"""`pants generate-lockfiles` for APK resolves (`[apk].resolves`): spec -> pinned lockfile.

Plugs into the core goal through its union types, as Pants' own JS and Python backends do.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Iterable

from ocibuild.apk.lockfile import Lockfile, load_lockfile
from ocibuild.apk.spec import load_spec
from ocibuild.apk.version import compare_versions
from ocibuild.contract import ApkLockRequest
from ocibuild.errors import OciBuildError
from pants.core.goals.generate_lockfiles import (
    GenerateLockfile,
    GenerateLockfileResult,
    KnownUserResolveNames,
    KnownUserResolveNamesRequest,
    LockfileDiff,
    LockfilePackages,
    RequestedUserResolveNames,
    UserGenerateLockfiles,
)
from pants.engine.fs import Digest, DigestContents, PathGlobs
from pants.engine.process import ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel
from pants_oci.errors import MissingApkSpecError
from pants_oci.subsystems.apk import ApkSubsystem, lockfile_for_spec
from pants_oci.util_rules.ocibuild_process import OciBuildProcess, OciBuildResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateApkLockfile(GenerateLockfile):
    spec_path: str


class KnownApkUserResolveNamesRequest(KnownUserResolveNamesRequest):
    pass


class RequestedApkUserResolveNames(RequestedUserResolveNames):
    pass


@rule
async def known_apk_resolves(_: KnownApkUserResolveNamesRequest, apk: ApkSubsystem) -> KnownUserResolveNames:
    return KnownUserResolveNames(
        names=tuple(sorted(apk.resolves)),
        option_name="[apk].resolves",
        requested_resolve_names_cls=RequestedApkUserResolveNames,
    )


@rule
async def setup_apk_lockfile_requests(
    requested: RequestedApkUserResolveNames, apk: ApkSubsystem
) -> UserGenerateLockfiles:
    return UserGenerateLockfiles(
        GenerateApkLockfile(
            resolve_name=name,
            lockfile_dest=lockfile_for_spec(apk.resolves[name]),
            # The core goal sets it when `[generate-lockfiles].diff` (or `diff_include_unchanged`)
            # is on, as for Pants' own resolves.
            diff=False,
            spec_path=apk.resolves[name],
        )
        for name in requested
    )


@functools.total_ordering
@dataclass(frozen=True)
class ApkVersion:
    """An Alpine version with apk-tools' ordering, for Pants' lockfile diff."""

    version: str

    def __lt__(self, other: "ApkVersion") -> bool:
        return compare_versions(self.version, other.version) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApkVersion) and compare_versions(self.version, other.version) == 0

    def __hash__(self) -> int:
        return hash(self.version)

    def __str__(self) -> str:
        return self.version


def _packages(lock: Lockfile | None) -> LockfilePackages:
    if lock is None:
        return LockfilePackages({})
    return LockfilePackages({f"{p.name} ({p.architecture})": ApkVersion(p.version) for p in lock.packages})


def _spec_inputs(spec_path: str, spec_text: str) -> list[str]:
    """The spec plus the keyring files it names by path (URLs are fetched by the lock process)."""
    spec = load_spec(spec_text, spec_path)
    spec_dir = os.path.dirname(spec_path)
    return [spec_path] + [
        os.path.normpath(os.path.join(spec_dir, key)) for key in spec.keyring if "://" not in key
    ]


def _old_lock(text: str, path: str) -> Lockfile | None:
    """The lock being replaced, for the diff; one we cannot read (e.g. of an older format) is
    replaced like a missing one, since rewriting it is what its error message asks for."""
    try:
        return load_lockfile(text, path, check_keys=False)
    except OciBuildError as e:
        logger.warning(f"replacing an unreadable lockfile: {e}")
        return None


def lockfile_diff(request: GenerateApkLockfile, old_text: str | None, new_text: str) -> LockfileDiff | None:
    """The per-package changes `generate-lockfiles` prints; None unless the goal asked for them
    (`[generate-lockfiles].diff`)."""
    if not request.diff:
        return None
    old = _old_lock(old_text, request.lockfile_dest) if old_text is not None else None
    new = load_lockfile(new_text, request.lockfile_dest, check_keys=False)
    return LockfileDiff.create(
        path=request.lockfile_dest,
        resolve_name=request.resolve_name,
        old=_packages(old),
        new=_packages(new),
    )


@rule(desc="Generate an APK lockfile", level=LogLevel.DEBUG)
async def generate_apk_lockfile(request: GenerateApkLockfile, apk: ApkSubsystem) -> GenerateLockfileResult:
    spec_contents = await Get(DigestContents, PathGlobs([request.spec_path]))
    if not spec_contents:
        raise MissingApkSpecError(
            f"[apk].resolves names {request.spec_path!r} for resolve {request.resolve_name!r}, "
            "but there is no such file: create it or fix the option."
        )
    lock_request = ApkLockRequest(
        spec=request.spec_path,
        output=request.lockfile_dest,
        mirrors=tuple((prefix, tuple(targets)) for prefix, targets in sorted(apk.mirrors.items())),
    )
    inputs = await Get(Digest, PathGlobs(_spec_inputs(request.spec_path, spec_contents[0].content.decode())))
    result = await Get(
        OciBuildResult,
        OciBuildProcess(
            request=lock_request,
            description=f"Resolve and lock APK packages for `{request.resolve_name}`",
            input_digest=inputs,
            output_files=(request.lockfile_dest,),
            # Reads repositories over the network or from mirrors outside the sandbox.
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    diff = None
    if request.diff:
        new_contents = await Get(DigestContents, Digest, result.output_digest)
        old_contents = await Get(DigestContents, PathGlobs([request.lockfile_dest]))
        diff = lockfile_diff(
            request,
            old_contents[0].content.decode() if old_contents else None,
            new_contents[0].content.decode(),
        )
    return GenerateLockfileResult(result.output_digest, request.resolve_name, request.lockfile_dest, diff)


def rules() -> Iterable:
    return (
        *collect_rules(),
        UnionRule(GenerateLockfile, GenerateApkLockfile),
        UnionRule(KnownUserResolveNamesRequest, KnownApkUserResolveNamesRequest),
        UnionRule(RequestedUserResolveNames, RequestedApkUserResolveNames),
    )
