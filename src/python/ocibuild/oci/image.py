"""Assembling an OCI image: layers stacked over an optional base, for one or several platforms.

`build_image` writes, all or nothing, into an output folder:
  layout/                   the OCI image layout (index.json tagged with the request's tag); the
                            image's own layers gzip'd as built, or re-encoded as zstd
                            (`compression="zstd"`, ocibuild.oci.zstd_layers)
  image.oci.tar             the layout as an oci-archive (`podman load -i`)
  image.docker.tar          a docker-archive (`docker load -i`); one `image-<arch>.docker.tar` per
                            platform when there are several
  image.json                metadata: digests, platforms, sizes
  sbom/<arch>.spdx.json     SPDX 2.3 JSON SBOM of each platform image (ocibuild.sbom.build)
  sbom/index.spdx.json      and of the index, when there are several platforms

The SBOMs are outside the layout: the image digests are the same with or without them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ocibuild.common.atomic import write_bytes_atomically
from ocibuild.common.validate import encode
from ocibuild.contract import (
    IMAGE_LAYOUT,
    IMAGE_METADATA,
    LAYER_COMPRESSIONS,
    OCI_ARCHIVE,
    SBOM_DIR,
    ImageMetadata,
    PlatformImageMetadata,
    docker_archive_name,
    sbom_name,
)
from ocibuild.errors import OciBuildError
from ocibuild.oci.archives import DockerImage, write_docker_archive, write_oci_archive
from ocibuild.oci.config import ConfigOptions, HistoryStep, build_config
from ocibuild.oci.descriptors import (
    BASE_DIGEST,
    BASE_NAME,
    CONFIG,
    INDEX,
    MANIFEST,
    REF_NAME,
    Descriptor,
    canonical_json,
)
from ocibuild.oci.layers import LayerFacts, LayerInput
from ocibuild.oci.layout import LayoutImage, LayoutWriter, OciLayout, layout_index, load_layout
from ocibuild.oci.output_dir import staged_output_dir
from ocibuild.oci.platforms import Platform, alpine_arch_for_platform, platform_for_alpine_arch
from ocibuild.oci.zstd_layers import zstd_layers
from ocibuild.sbom.build import LockedApk, PlatformSbomInput, SbomFiles, base_sbom_packages, write_image_sboms
from ocibuild.sbom.facts import BaseImageFacts
from ocibuild.sbom.layer_scan import LayerSource

__all__ = ["ImageRequest", "PlatformImage", "ImageResult", "build_image"]

# Docker's reference grammar (distribution/reference), which `docker load` enforces on RepoTags.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?"
_REPOSITORY_RE = re.compile(rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class ImageRequest:
    repository: str
    tag: str
    layers: Tuple[LayerInput, ...] = ()
    config: ConfigOptions = field(default_factory=ConfigOptions)
    base: Optional[Path] = None  # an OCI layout written by build_image
    base_name: Optional[str] = None  # recorded as org.opencontainers.image.base.name
    architectures: Optional[Tuple[str, ...]] = None  # Alpine names; None: from the layers, else the base
    annotations: Tuple[Tuple[str, str], ...] = ()
    created: Optional[int] = None  # SOURCE_DATE_EPOCH; None means 1970-01-01T00:00:00Z
    locked: Tuple[LockedApk, ...] = ()  # the layers' lock facts (layer.json `packages`), for the SBOMs
    compression: str = "gzip"  # of the image's own layers in the layout: "gzip" (as built) or "zstd"

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class PlatformImage:
    architecture: str  # Alpine name (or the platform string when Alpine has none)
    platform: Platform
    manifest: Descriptor
    config: Descriptor
    size: int  # manifest + config + compressed layers
    uncompressed_size: int  # layers' tars
    docker_archive: str
    sbom: Optional[str] = None  # in the output folder


@dataclass(frozen=True)
class ImageResult:
    top: Descriptor  # what index.json points at: the manifest (one platform) or the image index
    images: Tuple[PlatformImage, ...]
    metadata: ImageMetadata

    @property
    def digest(self) -> str:
        return self.top.digest


@dataclass(frozen=True)
class _Target:
    architecture: str
    platform: Platform


def _check_names(request: ImageRequest) -> None:
    if not _REPOSITORY_RE.match(request.repository):
        raise OciBuildError(
            f"repository {request.repository!r} is not a valid image name: use lowercase letters, digits and "
            "`._-` separators in `/`-separated parts (e.g. `images/static`)"
        )
    if not _TAG_RE.match(request.tag):
        raise OciBuildError(
            f"tag {request.tag!r} is not valid: use up to 128 of `A-Za-z0-9_.-`, not starting with `.-`"
        )
    if request.compression not in LAYER_COMPRESSIONS:
        raise OciBuildError(
            f"compression {request.compression!r} is not supported; use one of {', '.join(LAYER_COMPRESSIONS)}"
        )


def _targets(request: ImageRequest, base: Optional[OciLayout]) -> List[_Target]:
    if request.architectures:
        archs = sorted(set(request.architectures))
    else:
        archs = sorted({layer.architecture for layer in request.layers if layer.architecture})
    if archs:
        targets = [_Target(a, platform_for_alpine_arch(a, f"architecture {a!r}")) for a in archs]
    elif base is not None:
        targets = [
            _Target(alpine_arch_for_platform(i.platform) or str(i.platform).replace("/", "-"), i.platform)
            for i in base.images
        ]
    else:
        raise OciBuildError(
            "cannot tell which architecture the image is for: no layer names one and there is no base image; "
            "set `architectures` in the request"
        )
    return sorted(targets, key=lambda t: t.platform)


def _layers_per_target(request: ImageRequest, targets: Sequence[_Target]) -> Dict[str, List[LayerInput]]:
    per_target = {
        t.architecture: [layer for layer in request.layers if layer.architecture in (None, t.architecture)]
        for t in targets
    }
    counts = {arch: len(layers) for arch, layers in per_target.items()}
    if len(set(counts.values())) > 1:
        summary = ", ".join(f"{arch}: {n}" for arch, n in sorted(counts.items()))
        raise OciBuildError(
            f"the architectures get different numbers of layers ({summary}); build every layer for every "
            "architecture of the image, or limit `architectures`"
        )
    return per_target


def _history_steps(layers: Sequence[LayerInput], options: ConfigOptions) -> List[HistoryStep]:
    steps = [HistoryStep(layer.created_by or f"layer {layer.facts.diff_id}") for layer in layers]
    described = options.describe()
    if not layers and described:
        # Nothing else would record that this image changed its base's settings.
        steps.append(HistoryStep(f"oci_image config: {described}", empty_layer=True))
    return steps


def _assemble_platform(
    writer: LayoutWriter,
    request: ImageRequest,
    target: _Target,
    base_image: Optional[LayoutImage],
    base: Optional[OciLayout],
    layers: Sequence[LayerInput],
    annotations: Dict[str, str],
) -> Tuple[Descriptor, Descriptor, bytes, List[Tuple[Path, LayerFacts]]]:
    stack: List[Tuple[Path, LayerFacts]] = []
    if base_image is not None and base is not None:
        stack += [(base.blob_path(f.descriptor.digest), f) for f in base_image.layers]
    stack += [(layer.blob, layer.facts) for layer in layers]
    for path, facts in stack:
        writer.add_file(path, facts.descriptor)
    config = build_config(
        base_image.config if base_image else None,
        target.platform,
        request.config,
        [layer.facts.diff_id for layer in layers],
        _history_steps(layers, request.config),
        request.created,
    )
    config_bytes = canonical_json(config)
    config_descriptor = writer.add_bytes(CONFIG, config_bytes)
    manifest: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config_descriptor.to_json(),
        "layers": [facts.descriptor.to_json() for _, facts in stack],
    }
    manifest_annotations = dict(annotations)
    if base_image is not None:
        manifest_annotations[BASE_DIGEST] = base_image.manifest_descriptor.digest
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    manifest_descriptor = writer.add_json(MANIFEST, manifest).with_platform(target.platform)
    return manifest_descriptor, config_descriptor, config_bytes, stack


def _sbom_input(
    target: _Target,
    manifest: Descriptor,
    config: Descriptor,
    config_bytes: bytes,
    stack: Sequence[Tuple[Path, LayerFacts]],
    base_image: Optional[LayoutImage],
    base_name: Optional[str],
) -> PlatformSbomInput:
    history = json.loads(config_bytes).get("history") or []
    created_by = [str(h.get("created_by", "")) for h in history if not h.get("empty_layer")]
    from_base = len(base_image.layers) if base_image is not None else 0
    layers = tuple(
        LayerSource(
            blob=path,
            digest=facts.descriptor.digest,
            diff_id=facts.diff_id,
            created_by=created_by[i] if i < len(created_by) else "",
            from_base=i < from_base,
        )
        for i, (path, facts) in enumerate(stack)
    )
    base = None
    if base_image is not None:
        base = BaseImageFacts(base_name or "NOASSERTION", base_image.manifest_descriptor.digest)
    return PlatformSbomInput(
        target.architecture, str(target.platform), manifest.digest, config.digest, layers, base
    )


def _base_locked(request: ImageRequest, targets: Sequence[_Target]) -> Tuple[LockedApk, ...]:
    """The base's package lock facts, from the SBOMs its build wrote beside its layout."""
    if request.base is None:
        return ()
    folder = Path(request.base).parent / SBOM_DIR
    return tuple(p for t in targets for p in base_sbom_packages(folder / sbom_name(t.architecture)))


def build_image(request: ImageRequest, output_dir: Path) -> ImageResult:
    """Write the image for `request` into `output_dir` (replacing what was there, all or nothing)."""
    _check_names(request)
    base = load_layout(request.base) if request.base is not None else None
    targets = _targets(request, base)
    per_target = _layers_per_target(request, targets)
    annotations = dict(request.annotations)
    if base is not None and request.base_name:
        annotations[BASE_NAME] = request.base_name
    multi = len(targets) > 1

    with staged_output_dir(Path(output_dir)) as staging:
        writer = LayoutWriter(staging / IMAGE_LAYOUT)
        if request.compression == "zstd":
            per_target = zstd_layers(writer, per_target)
        images: List[PlatformImage] = []
        docker_images: List[Tuple[str, DockerImage]] = []
        sbom_inputs: List[PlatformSbomInput] = []
        for target in targets:
            base_image = base.image_for(target.platform) if base is not None else None
            manifest, config, config_bytes, stack = _assemble_platform(
                writer, request, target, base_image, base, per_target[target.architecture], annotations
            )
            archive = docker_archive_name(target.architecture, multi)
            sbom_inputs.append(
                _sbom_input(target, manifest, config, config_bytes, stack, base_image, request.base_name)
            )
            images.append(
                PlatformImage(
                    target.architecture,
                    target.platform,
                    manifest,
                    config,
                    manifest.size + config.size + sum(f.descriptor.size for _, f in stack),
                    sum(f.uncompressed_size for _, f in stack),
                    archive,
                )
            )
            docker_images.append(
                (archive, DockerImage(config_bytes, config.digest, stack, request.reference))
            )

        # skopeo/umoci find `layout:TAG` by a bare tag; podman load names the image after the archive's.
        ref = {REF_NAME: request.tag}
        archive_ref = {REF_NAME: request.reference}
        if multi:
            index: Dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": INDEX,
                "manifests": [i.manifest.to_json() for i in images],
            }
            if annotations:
                index["annotations"] = annotations
            top = writer.add_json(INDEX, index).with_annotations(ref)
        else:
            top = images[0].manifest.with_annotations(ref)
        writer.finish([top])

        write_oci_archive(
            writer.root, staging / OCI_ARCHIVE, layout_index([top.with_annotations(archive_ref)])
        )
        for archive, docker_image in docker_images:
            write_docker_archive(docker_image, staging / archive)
        sboms = write_image_sboms(
            staging,
            request.repository,
            request.tag,
            request.created or 0,
            sbom_inputs,
            request.locked + _base_locked(request, targets),
            index_digest=top.digest if multi else None,
        )
        images = [dataclasses.replace(i, sbom=sboms.platforms[i.architecture]) for i in images]
        uncompressed_sizes = {f.diff_id: f.uncompressed_size for _, d in docker_images for _, f in d.layers}
        metadata = _metadata(request, top, images, writer.root, uncompressed_sizes, sboms)
        write_bytes_atomically(str(staging / IMAGE_METADATA), canonical_json(encode(metadata)) + b"\n")
    return ImageResult(top, tuple(images), metadata)


def _metadata(
    request: ImageRequest,
    top: Descriptor,
    images: Sequence[PlatformImage],
    layout: Path,
    uncompressed_sizes: Dict[str, int],  # diff_id -> tar size, each distinct layer once
    sboms: SbomFiles,
) -> ImageMetadata:
    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    return ImageMetadata(
        repository=request.repository,
        tag=request.tag,
        reference=request.reference,
        digest=top.digest,
        media_type=top.media_type,
        layout=IMAGE_LAYOUT,
        oci_archive=OCI_ARCHIVE,
        size=sum(p.stat().st_size for p in blobs),
        uncompressed_size=sum(uncompressed_sizes.values()),
        platforms=tuple(str(i.platform) for i in images),
        images=tuple(
            (
                str(i.platform),
                PlatformImageMetadata(
                    architecture=i.architecture,
                    manifest=i.manifest.digest,
                    config=i.config.digest,
                    size=i.size,
                    uncompressed_size=i.uncompressed_size,
                    docker_archive=i.docker_archive,
                    sbom=i.sbom,
                ),
            )
            for i in images
        ),
        sbom=sboms.index,
    )
