"""`pants package` for `apk_layer`, `oci_layer` and `oci_image`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple

from ocibuild.contract import (
    IMAGE_LAYOUT,
    IMAGE_METADATA,
    LAYER_BLOB,
    ImageConfig,
    ImageLayer,
    ImageMetadata,
    OciImageRequest,
)
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.core.util_rules.distdir import DistDir
from pants.engine.addresses import UnparsedAddressInputs
from pants.engine.fs import (
    AddPrefix,
    Digest,
    DigestContents,
    DigestSubset,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSetsPerTarget, FieldSetsPerTargetRequest, Targets
from pants.engine.unions import UnionRule
from pants_oci.errors import OciImageBaseError, OciImageLayersError
from pants_oci.subsystems.oci import OciSubsystem
from pants_oci.target_types import (
    OciImageAnnotationsField,
    OciImageArchitecturesField,
    OciImageBaseField,
    OciImageCmdField,
    OciImageCompressionField,
    OciImageEntrypointField,
    OciImageEnvField,
    OciImageExposedPortsField,
    OciImageLabelsField,
    OciImageLayersField,
    OciImageRepositoryField,
    OciImageTagField,
    OciImageUserField,
    OciImageWorkdirField,
)
from pants_oci.util_rules.layers import ApkLayerFieldSet, BuiltLayers, FileLayerFieldSet, OciLayerFieldSet
from pants_oci.util_rules.ocibuild_process import OciBuildProcess, OciBuildResult


@dataclass(frozen=True)
class OciImageFieldSet(PackageFieldSet):
    required_fields = (OciImageLayersField,)

    base: OciImageBaseField
    layers: OciImageLayersField
    entrypoint: OciImageEntrypointField
    cmd: OciImageCmdField
    env: OciImageEnvField
    user: OciImageUserField
    workdir: OciImageWorkdirField
    labels: OciImageLabelsField
    annotations: OciImageAnnotationsField
    exposed_ports: OciImageExposedPortsField
    repository: OciImageRepositoryField
    tag: OciImageTagField
    architectures: OciImageArchitecturesField
    compression: OciImageCompressionField
    output_path: OutputPathField

    @property
    def repository_name(self) -> str:
        if self.repository.value:
            return self.repository.value
        address = self.address
        if os.path.basename(address.spec_path) == address.target_name:
            return address.spec_path
        return f"{address.spec_path}/{address.target_name}".strip("/")

    @property
    def reference(self) -> str:
        return f"{self.repository_name}:{self.tag.value}"


@dataclass(frozen=True)
class BuiltImage:
    """The core's output directory (`layout/`, archives, `image.json`) under `directory`."""

    digest: Digest
    directory: str
    reference: str
    metadata: Tuple[Tuple[str, str], ...]  # from image.json: what `package` prints
    sboms: Tuple[str, ...] = ()  # the SBOMs in the output directory (`sbom/<arch>.spdx.json`, ...)


def _check_layer_targets(targets: Targets, field_sets: FieldSetsPerTarget, owner: str) -> None:
    for target, applicable in zip(targets, field_sets.collection):
        if not applicable:
            raise OciImageLayersError(
                f"{owner}: `layers` may name layer targets only (`apk_layer`, `oci_layer`, or a plugin's "
                f"layer kind), not {target.address} ({target.alias}); wrap files and packages in an `oci_layer`."
            )


def _image_config(field_set: OciImageFieldSet) -> ImageConfig:
    def strings(value: Optional[Tuple[str, ...]]) -> Optional[Tuple[str, ...]]:
        return tuple(value) if value is not None else None

    return ImageConfig(
        entrypoint=strings(field_set.entrypoint.value),
        cmd=strings(field_set.cmd.value),
        env=tuple((field_set.env.value or {}).items()),
        user=field_set.user.value,
        workdir=field_set.workdir.value,
        labels=tuple((field_set.labels.value or {}).items()),
        exposed_ports=tuple(field_set.exposed_ports.value or ()),
    )


@dataclass(frozen=True)
class OciImageInputs:
    """What the `oci-image` Process of one image gets: its request and the files it names."""

    request: OciImageRequest
    digest: Digest


@rule(desc="Collect the layers and base of an OCI image")
async def oci_image_inputs(field_set: OciImageFieldSet, oci: OciSubsystem) -> OciImageInputs:
    base_targets, layer_targets = await MultiGet(
        Get(Targets, UnparsedAddressInputs, field_set.base.to_unparsed_address_inputs()),
        Get(Targets, UnparsedAddressInputs, field_set.layers.to_unparsed_address_inputs()),
    )
    if len(base_targets) > 1 or any(not OciImageFieldSet.is_applicable(t) for t in base_targets):
        named = ", ".join(f"{t.address} ({t.alias})" for t in base_targets)
        raise OciImageBaseError(
            f"{field_set.address}: `base` names {named}, not one `oci_image` target: point it at an "
            "image (e.g. //images/static:static), or leave it unset to build on scratch."
        )

    base_images = await MultiGet(
        Get(BuiltImage, OciImageFieldSet, OciImageFieldSet.create(t)) for t in base_targets
    )
    layer_field_sets = await Get(
        FieldSetsPerTarget, FieldSetsPerTargetRequest(OciLayerFieldSet, layer_targets)
    )
    _check_layer_targets(layer_targets, layer_field_sets, str(field_set.address))
    # One layer kind per target: the first applicable member of the union.
    built_layers = await MultiGet(
        Get(BuiltLayers, OciLayerFieldSet, field_sets[0]) for field_sets in layer_field_sets.collection
    )

    placements = []  # (digest, directory in the request's sandbox)
    request_layers = []
    for index, layers in enumerate(built_layers):
        for layer in layers.layers:
            prefix = f"layers/{index}/{layer.architecture or 'all'}"
            placements.append((layer.digest, prefix))
            request_layers.append(
                ImageLayer(
                    blob=f"{prefix}/{layer.blob_path}",
                    descriptor=f"{prefix}/{layer.descriptor_path}",
                    architecture=layer.architecture,
                    created_by=layers.created_by,
                )
            )
    base = base_images[0] if base_images else None
    if base:
        placements.append((base.digest, "base"))
    digests = await MultiGet(Get(Digest, AddPrefix(digest, prefix)) for digest, prefix in placements)

    request = OciImageRequest(
        repository=field_set.repository_name,
        tag=field_set.tag.value or "latest",
        base=f"base/{base.directory}/{IMAGE_LAYOUT}" if base else None,
        base_name=base.reference if base else None,
        layers=tuple(request_layers),
        architectures=tuple(field_set.architectures.value) if field_set.architectures.value else None,
        config=_image_config(field_set),
        annotations=tuple((field_set.annotations.value or {}).items()),
        created=oci.source_date_epoch,
        compression=field_set.compression.value or "gzip",
    )
    return OciImageInputs(request, await Get(Digest, MergeDigests(digests)))


@rule(desc="Build an OCI image")
async def build_oci_image(field_set: OciImageFieldSet) -> BuiltImage:
    inputs = await Get(OciImageInputs, OciImageFieldSet, field_set)
    request = inputs.request
    result = await Get(
        OciBuildResult,
        OciBuildProcess(
            request=request,
            description=f"Assemble OCI image {field_set.address}",
            input_digest=inputs.digest,
            output_directories=(request.output_dir,),
        ),
    )
    metadata_contents = await Get(
        DigestContents,
        DigestSubset(result.output_digest, PathGlobs([f"{request.output_dir}/{IMAGE_METADATA}"])),
    )
    metadata = ImageMetadata.from_json(metadata_contents[0].content, metadata_contents[0].path)
    summary = (
        ("digest", metadata.digest),
        ("size", str(metadata.size)),
        ("uncompressed_size", str(metadata.uncompressed_size)),
        ("platforms", ", ".join(metadata.platforms)),
    )
    sboms = tuple(p for p in (*(i.sbom for _, i in metadata.images), metadata.sbom) if p)
    return BuiltImage(result.output_digest, request.output_dir, field_set.reference, summary, sboms)


@rule(desc="Package an OCI image")
async def package_oci_image(field_set: OciImageFieldSet, dist_dir: DistDir) -> BuiltPackage:
    image = await Get(BuiltImage, OciImageFieldSet, field_set)
    output_path = field_set.output_path.value_or_default(file_ending=None)
    stripped = await Get(Digest, RemovePrefix(image.digest, image.directory))
    digest = await Get(Digest, AddPrefix(stripped, output_path))
    lines = tuple(f"{key}: {value}" for key, value in image.metadata)
    # Where they land, as Pants' own "Wrote dist/..." line names the output folder.
    lines += tuple(f"sbom: {os.path.join(str(dist_dir.relpath), output_path, sbom)}" for sbom in image.sboms)
    return BuiltPackage(
        digest, (BuiltPackageArtifact(output_path, extra_log_lines=(f"image {image.reference}", *lines)),)
    )


@dataclass(frozen=True)
class PackageLayersRequest:
    layers: BuiltLayers
    output_path: str


@rule
async def package_layers(request: PackageLayersRequest) -> BuiltPackage:
    """Each architecture's layer blob and descriptor under `<output_path>/<arch>/`."""
    subdirs = [os.path.join(request.output_path, layer.architecture or "") for layer in request.layers.layers]
    stripped = await MultiGet(
        Get(Digest, RemovePrefix(layer.digest, layer.directory)) for layer in request.layers.layers
    )
    placed = await MultiGet(Get(Digest, AddPrefix(d, subdir)) for d, subdir in zip(stripped, subdirs))
    return BuiltPackage(
        await Get(Digest, MergeDigests(placed)),
        tuple(BuiltPackageArtifact(os.path.join(subdir, LAYER_BLOB)) for subdir in subdirs),
    )


@rule(desc="Package an APK layer")
async def package_apk_layer(field_set: ApkLayerFieldSet) -> BuiltPackage:
    layers = await Get(BuiltLayers, ApkLayerFieldSet, field_set)
    output_path = field_set.output_path.value_or_default(file_ending=None)
    return await Get(BuiltPackage, PackageLayersRequest(layers, output_path))


@rule(desc="Package a file layer")
async def package_oci_layer(field_set: FileLayerFieldSet) -> BuiltPackage:
    layers = await Get(BuiltLayers, FileLayerFieldSet, field_set)
    output_path = field_set.output_path.value_or_default(file_ending=None)
    return await Get(BuiltPackage, PackageLayersRequest(layers, output_path))


def rules():
    return (
        *collect_rules(),
        UnionRule(PackageFieldSet, ApkLayerFieldSet),
        UnionRule(PackageFieldSet, FileLayerFieldSet),
        UnionRule(PackageFieldSet, OciImageFieldSet),
    )
