"""Layer kinds and how they are built: `apk_layer` (per architecture, from a lockfile) and
`oci_layer` (plain files).

`oci_image(layers=...)` accepts any target with a member of the `OciLayerFieldSet` union. A plugin
adds a layer kind without editing this one: a field set subclassing `OciLayerFieldSet`, registered
with `UnionRule(OciLayerFieldSet, MyLayerFieldSet)`, and a rule `MyLayerFieldSet -> BuiltLayers`
whose layers hold `contract.LAYER_BLOB` and `contract.LAYER_DESCRIPTOR` (a contract.LayerDescriptor).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple

from ocibuild.apk.lockfile import Lockfile, dump_lockfile, load_lockfile, select_packages
from ocibuild.contract import (
    LAYER_BLOB,
    LAYER_DESCRIPTOR,
    OUTPUT_DIR,
    RELOCK,
    ApkLayerRequest,
    FilesLayerRequest,
)
from ocibuild.errors import OciBuildError
from pants.core.goals.package import (
    BuiltPackage,
    EnvironmentAwarePackageRequest,
    OutputPathField,
    PackageFieldSet,
)
from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.engine.addresses import UnparsedAddressInputs
from pants.engine.environment import EnvironmentName
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    FileContent,
    MergeDigests,
    PathGlobs,
    Snapshot,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Targets,
)
from pants.engine.unions import UnionRule, union
from pants_oci.errors import ApkLockfileError, OciLayerContentsError, StaleApkLockfileError
from pants_oci.subsystems.apk import ApkSubsystem
from pants_oci.subsystems.oci import OciSubsystem
from pants_oci.target_types import (
    ApkAccountsField,
    ApkAllowSetuidField,
    ApkArchitecturesField,
    ApkLockfileField,
    ApkPackagesField,
    ApkSkipScriptsOfField,
    OciLayerContentsField,
    OciLayerDestinationField,
    OciLayerFileModeField,
    OciLayerOwnerField,
)
from pants_oci.util_rules.apk_downloads import ApkDownload, ApkDownloadsRequest
from pants_oci.util_rules.ocibuild_process import OciBuildProcess, OciBuildResult, relock_hint


@dataclass(frozen=True)
class BuiltLayer:
    """`contract.LAYER_BLOB` and `contract.LAYER_DESCRIPTOR` under `directory` in `digest`."""

    architecture: Optional[str]  # None: the same layer serves every architecture
    digest: Digest
    directory: str

    @property
    def blob_path(self) -> str:
        return os.path.join(self.directory, LAYER_BLOB)

    @property
    def descriptor_path(self) -> str:
        return os.path.join(self.directory, LAYER_DESCRIPTOR)


@dataclass(frozen=True)
class BuiltLayers:
    """What a layer target gives an image: one layer per architecture, or one for all."""

    layers: Tuple[BuiltLayer, ...]
    created_by: str  # the image history's `created_by` for these layers


@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class OciLayerFieldSet(FieldSet):
    """A layer kind `oci_image(layers=...)` accepts; each member has a rule building BuiltLayers."""


@dataclass(frozen=True)
class ApkLayerFieldSet(PackageFieldSet, OciLayerFieldSet):
    required_fields = (ApkLockfileField,)

    lockfile: ApkLockfileField
    packages: ApkPackagesField
    architectures: ApkArchitecturesField
    accounts: ApkAccountsField
    skip_scripts_of: ApkSkipScriptsOfField
    allow_setuid: ApkAllowSetuidField
    output_path: OutputPathField


@dataclass(frozen=True)
class FileLayerFieldSet(PackageFieldSet, OciLayerFieldSet):
    required_fields = (OciLayerContentsField,)

    contents: OciLayerContentsField
    destination: OciLayerDestinationField
    file_mode: OciLayerFileModeField
    owner: OciLayerOwnerField
    output_path: OutputPathField


def _check_lock_is_fresh(lock: Lockfile, lock_path: str, spec: Optional[bytes], apk: ApkSubsystem) -> None:
    if spec is None:
        return  # the spec lives elsewhere (e.g. a lock vendored from another repo): trust the lock
    problem = lock.staleness(lock_path, spec, strict=False)  # an old apko lock without checksum: trusted
    if problem:
        resolves = [name for name, path in apk.resolves.items() if path == lock.spec_name]
        if not resolves:
            problem += " (add the spec to [apk].resolves)"
        raise StaleApkLockfileError(relock_hint(problem, resolves[0] if resolves else None))


@dataclass(frozen=True)
class ApkLayerInputsRequest:
    lock: Lockfile
    lock_path: str
    arch: str
    packages: Tuple[str, ...]  # the layer's `packages`: empty means the whole lock
    owner: str  # the target's address, for messages


@dataclass(frozen=True)
class ApkLayerInputs:
    """What one architecture's `apk-layer` process reads: at `lock_path`, a lock of just the layer's
    packages (the closure of `packages`) and the keys; their .apk files under `apks/<arch>/`.

    Nothing else of the lock goes in, so the process's cache key changes only when one of the
    layer's own packages does, not when any other package of the lock (or the spec) changes."""

    digest: Digest
    packages: Tuple[str, ...]  # names of the closure, in install order


@rule(desc="Select and download the packages of an APK layer")
async def apk_layer_inputs(request: ApkLayerInputsRequest) -> ApkLayerInputs:
    try:
        # the same function the layer builder uses, so the inputs are exactly what it installs
        closure = select_packages(request.lock.packages_for(request.arch), request.packages, request.arch)
    except OciBuildError as e:
        raise ApkLockfileError(relock_hint(f"{request.owner}: {request.lock_path}: {e}")) from None
    unpinned = [p for p in closure if p.sha256 is None or p.size is None]
    if unpinned:
        raise ApkLockfileError(
            relock_hint(
                f"{request.owner}: {request.lock_path}: package {unpinned[0].name} ({request.arch}) has no "
                f"sha256/size, which Pants needs to download it (a lock written by apko?): {RELOCK}"
            )
        )
    downloads = tuple(ApkDownload(p.url, p.sha256, p.size) for p in closure)  # type: ignore[arg-type]
    subset = dump_lockfile(request.lock.subset(request.arch, closure)).encode("ascii")
    lock_digest, apks = await MultiGet(
        Get(Digest, CreateDigest([FileContent(request.lock_path, subset)])),
        Get(Digest, ApkDownloadsRequest(downloads, prefix=f"apks/{request.arch}")),
    )
    digest = await Get(Digest, MergeDigests([lock_digest, apks]))
    return ApkLayerInputs(digest, tuple(p.name for p in closure))


@rule(desc="Build APK layers")
async def build_apk_layers(field_set: ApkLayerFieldSet, apk: ApkSubsystem, oci: OciSubsystem) -> BuiltLayers:
    sources = await Get(HydratedSources, HydrateSourcesRequest(field_set.lockfile))
    (lock_file,) = await Get(DigestContents, Digest, sources.snapshot.digest)
    try:
        lock = load_lockfile(lock_file.content.decode(), lock_file.path, check_keys=False)
    except OciBuildError as e:
        raise ApkLockfileError(relock_hint(f"{field_set.address}: {e}")) from None
    spec_contents = await Get(DigestContents, PathGlobs([lock.spec_name])) if lock.spec_name else ()
    _check_lock_is_fresh(lock, lock_file.path, spec_contents[0].content if spec_contents else None, apk)

    locked_archs = sorted({p.architecture for p in lock.packages})
    archs = list(field_set.architectures.value or locked_archs)
    missing = sorted(set(archs) - set(locked_archs))
    if missing:
        raise ApkLockfileError(
            f"{field_set.address}: {lock_file.path} has no packages for {', '.join(missing)} "
            f"(it has {', '.join(locked_archs)}): add the architecture to the spec's `archs` and re-lock."
        )

    accounts_file = "accounts.json"
    extra_files = (
        [FileContent(accounts_file, field_set.accounts.value.encode())] if field_set.accounts.value else []
    )
    extra_digest = await Get(Digest, CreateDigest(extra_files))
    packages = tuple(field_set.packages.value or ())
    layer_inputs = await MultiGet(
        Get(
            ApkLayerInputs,
            ApkLayerInputsRequest(lock, lock_file.path, arch, packages, str(field_set.address)),
        )
        for arch in archs
    )
    requests = [
        ApkLayerRequest(
            lockfile=lock_file.path,
            arch=arch,
            packages_dir=f"apks/{arch}",
            packages=packages,
            accounts=accounts_file if field_set.accounts.value else None,
            source_date_epoch=oci.source_date_epoch,
            allow_setuid=bool(field_set.allow_setuid.value),
            skip_scripts_of=tuple(field_set.skip_scripts_of.value or ()),
        )
        for arch in archs
    ]
    input_digests = await MultiGet(
        Get(Digest, MergeDigests([extra_digest, inputs.digest])) for inputs in layer_inputs
    )
    results = await MultiGet(
        Get(
            OciBuildResult,
            OciBuildProcess(
                request=request,
                description=f"Build APK layer {field_set.address} ({request.arch})",
                input_digest=input_digest,
                output_directories=(OUTPUT_DIR,),
            ),
        )
        for request, input_digest in zip(requests, input_digests)
    )
    return BuiltLayers(
        tuple(BuiltLayer(arch, r.output_digest, OUTPUT_DIR) for arch, r in zip(archs, results)),
        created_by=f"apk_layer {field_set.address} from {lock_file.path}",
    )


@rule(desc="Build file layers")
async def build_file_layer(field_set: FileLayerFieldSet, oci: OciSubsystem) -> BuiltLayers:
    targets = await Get(Targets, UnparsedAddressInputs, field_set.contents.to_unparsed_address_inputs())
    package_field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, targets))
    packaged = [t for t, fs in zip(targets, package_field_sets.collection) if fs]
    packages = await MultiGet(
        Get(BuiltPackage, EnvironmentAwarePackageRequest(fs)) for fs in package_field_sets.field_sets
    )
    file_sources = await MultiGet(
        Get(
            HydratedSources,
            HydrateSourcesRequest(
                t.get(SourcesField),
                for_sources_types=(FileSourceField, ResourceSourceField),
                enable_codegen=True,
            ),
        )
        for t in targets
        if t not in packaged
    )
    files = await Get(
        Snapshot,
        MergeDigests([*(p.digest for p in packages), *(s.snapshot.digest for s in file_sources)]),
    )
    if not files.files:
        raise OciLayerContentsError(f"{field_set.address}: `contents` gave no files to put in the layer.")
    request = FilesLayerRequest(
        destination=field_set.destination.value or "/",
        files=tuple(f"files/{path}" for path in files.files),
        owner=field_set.owner.value or "0:0",
        mode=field_set.file_mode.value or None,
        source_date_epoch=oci.source_date_epoch or 0,
    )
    result = await Get(
        OciBuildResult,
        OciBuildProcess(
            request=request,
            description=f"Build file layer {field_set.address}",
            input_digest=await Get(Digest, AddPrefix(files.digest, "files")),
            output_directories=(OUTPUT_DIR,),
        ),
    )
    return BuiltLayers(
        (BuiltLayer(None, result.output_digest, OUTPUT_DIR),),
        created_by=f"oci_layer {field_set.address}: {', '.join(sorted(os.path.basename(f) for f in files.files))}",
    )


def rules():
    return (
        *collect_rules(),
        UnionRule(OciLayerFieldSet, ApkLayerFieldSet),
        UnionRule(OciLayerFieldSet, FileLayerFieldSet),
    )
