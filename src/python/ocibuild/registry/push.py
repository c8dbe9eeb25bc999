"""Push an OCI image layout to one or more `registry/repository` targets, tags last.

Order, per the distribution spec's constraints and so that a failed push never leaves a tag on a
partial image: in every target, blobs (configs, layers) first, then the per-platform manifests by
digest, then the index by digest; then the signing hook for every pushed manifest digest; only then,
in every target, the tags. A target whose tags all already name the image is left alone (the
registry accepted that manifest, so it holds everything it references): a warm push costs one HEAD
per tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ocibuild.common.validate import decode
from ocibuild.errors import OciBuildError
from ocibuild.oci.descriptors import (
    BASE_NAME,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX,
    MANIFEST,
    Descriptor,
    ImageIndexJson,
    ManifestJson,
)
from ocibuild.oci.layout import INDEX_FILE, OCI_LAYOUT_FILE, blob_path, pick_index_entry, read_verified_blob
from ocibuild.registry.client import RegistryClient, short_digest
from ocibuild.registry.reference import Reference, check_tag, is_registry_component
from ocibuild.strictload import load_json

_MANIFEST_TYPES = (MANIFEST, DOCKER_MANIFEST)
_INDEX_TYPES = (INDEX, DOCKER_MANIFEST_LIST)

# (client, repository, manifest digest, docker reference "registry/repository") -> one line to log
SignHook = Callable[[RegistryClient, str, str, str], str]


@dataclass(frozen=True)
class LayoutBlob:
    digest: str
    size: int
    path: Path


@dataclass(frozen=True)
class LayoutManifest:
    descriptor: Descriptor
    data: bytes  # exactly the layout's bytes: what the digest is of


@dataclass(frozen=True)
class LayoutContent:
    """What a push sends: blobs, then manifests children-first (the top one last)."""

    path: Path
    blobs: Tuple[LayoutBlob, ...]
    manifests: Tuple[LayoutManifest, ...]
    base_names: Tuple[str, ...]  # `org.opencontainers.image.base.name` annotations: mount sources

    @property
    def top(self) -> LayoutManifest:
        return self.manifests[-1]

    @property
    def digest(self) -> str:
        return self.top.descriptor.digest


@dataclass(frozen=True)
class PushTarget:
    client: RegistryClient
    repository: str

    @property
    def name(self) -> str:
        return f"{self.client.registry}/{self.repository}"


def _read_manifest(layout: Path, descriptor: Descriptor) -> Tuple[bytes, dict]:
    path = blob_path(layout, descriptor.digest)
    data = read_verified_blob(layout, descriptor, "manifest")
    value = load_json(data.decode("utf-8", errors="replace"), str(path))
    if not isinstance(value, dict):
        raise OciBuildError(f"{path}: a manifest must be a JSON object")
    return data, value


def _layout_blob(layout: Path, descriptor: Descriptor) -> LayoutBlob:
    path = blob_path(layout, descriptor.digest)
    try:
        size = path.stat().st_size
    except OSError:
        raise OciBuildError(f"{path}: missing blob {descriptor.digest}; the layout is incomplete") from None
    if size != descriptor.size:
        raise OciBuildError(
            f"{path}: blob has {size} bytes, its descriptor says {descriptor.size}: the layout is corrupt, rebuild it"
        )
    return LayoutBlob(descriptor.digest, size, path)


def read_layout(layout: Path, tag: Optional[str] = None) -> LayoutContent:
    """The image index.json points at (the one tagged `tag`, or the only one), with all it references.

    Manifests are checked against their digests here; blobs' digests are checked by the registry on
    upload (and are not read at all when the registry already has them).
    """
    layout = Path(layout)
    if not (layout / OCI_LAYOUT_FILE).is_file():
        raise OciBuildError(f"{layout}: no {OCI_LAYOUT_FILE} file; is this an OCI image layout?")
    index_path = layout / INDEX_FILE
    try:
        index = load_json(index_path.read_text(encoding="utf-8"), str(index_path))
    except OSError as e:
        raise OciBuildError(f"{index_path}: cannot read the layout's index ({e.strerror or e})") from None
    top = pick_index_entry(index, str(index_path), tag)

    blobs: Dict[str, LayoutBlob] = {}
    manifests: Dict[str, LayoutManifest] = {}
    base_names: List[str] = []

    def note_base(base: Optional[str]) -> None:
        if base is not None and base not in base_names:
            base_names.append(base)

    def visit(descriptor: Descriptor, where: str) -> None:
        if descriptor.digest in manifests:
            return
        data, value = _read_manifest(layout, descriptor)
        blob_where = str(blob_path(layout, descriptor.digest))
        if descriptor.media_type in _MANIFEST_TYPES:
            manifest = decode(ManifestJson, value, blob_where)
            note_base(manifest.annotation(BASE_NAME))
            for blob in [d.descriptor() for d in (manifest.config, *manifest.layers)]:
                if blob.digest not in blobs:
                    blobs[blob.digest] = _layout_blob(layout, blob)
        elif descriptor.media_type in _INDEX_TYPES:
            image_index = decode(ImageIndexJson, value, blob_where)
            note_base(image_index.annotation(BASE_NAME))
            children = image_index.descriptors()
            if not children:
                raise OciBuildError(f"{blob_where}: the image index lists no manifests")
            for child in children:
                visit(child, blob_where)
        else:
            raise OciBuildError(
                f"{where}: cannot push {descriptor.digest} of media type {descriptor.media_type!r}"
            )
        manifests[descriptor.digest] = LayoutManifest(descriptor, data)

    visit(top, str(index_path))
    return LayoutContent(layout, tuple(blobs.values()), tuple(manifests.values()), tuple(base_names))


def _mount_sources(target: PushTarget, content: LayoutContent, earlier: Sequence[PushTarget]) -> List[str]:
    """Repositories of the same registry that may hold the blobs: earlier targets, the base image's."""
    sources = [t.repository for t in earlier if t.client.registry == target.client.registry]
    for base in content.base_names:
        name = base.split("@", 1)[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        first, sep, rest = name.partition("/")
        if sep and is_registry_component(first):
            if first == target.client.registry:
                sources.append(rest)
        elif name:
            sources.append(name)  # a name without registry: the same registry (Pants' repository names)
    return [s for s in dict.fromkeys(sources) if s != target.repository]


def _already_tagged(target: PushTarget, digest: str, tags: Sequence[str]) -> bool:
    if not tags:
        return target.client.manifest_digest(target.repository, digest) == digest
    return all(target.client.manifest_digest(target.repository, tag) == digest for tag in tags)


def _push_content(
    target: PushTarget, content: LayoutContent, mount_from: Sequence[str], log: Callable[[str], None]
) -> None:
    client, repository = target.client, target.repository
    counts: Dict[str, int] = {}
    for blob in content.blobs:
        state = client.upload_blob(repository, blob.digest, blob.size, blob.path, mount_from=mount_from)
        counts[state] = counts.get(state, 0) + 1
    for manifest in content.manifests:
        client.put_manifest(
            repository, manifest.descriptor.digest, manifest.data, manifest.descriptor.media_type
        )
        log(
            f"{target.name}: manifest {short_digest(manifest.descriptor.digest)} ({manifest.descriptor.media_type}) pushed"
        )
    summary = ", ".join(f"{counts[k]} {k}" for k in ("uploaded", "mounted", "skipped") if k in counts)
    log(
        f"{target.name}: {len(content.blobs)} blobs ({summary or 'none'}), {len(content.manifests)} manifests"
    )


def push_layout(
    content: LayoutContent,
    targets: Sequence[PushTarget],
    tags: Sequence[str],
    *,
    sign: Optional[SignHook] = None,
    mount_from: Sequence[str] = (),
    log: Callable[[str], None] = lambda line: None,
) -> List[Reference]:
    """Push `content` to every target; returns the references pushed (tagged ones carry the digest too)."""
    tags = [check_tag(t) for t in dict.fromkeys(tags)]
    digest = content.digest
    done: List[PushTarget] = []
    fresh: List[PushTarget] = []
    for target in targets:
        if _already_tagged(target, digest, tags):
            log(
                f"{target.name}: already has {short_digest(digest)}{' under every tag' if tags else ''}, nothing to upload"
            )
        else:
            sources = [*_mount_sources(target, content, done), *mount_from]
            _push_content(target, content, [s for s in dict.fromkeys(sources) if s != target.repository], log)
            fresh.append(target)
        done.append(target)
    if sign is not None:
        for target in targets:
            for manifest in reversed(content.manifests):  # the index first, then each platform's
                log(sign(target.client, target.repository, manifest.descriptor.digest, target.name))
    pushed: List[Reference] = []
    for target in targets:
        top = content.top
        for tag in tags:
            if target in fresh:
                target.client.put_manifest(target.repository, tag, top.data, top.descriptor.media_type)
            pushed.append(Reference(target.client.registry, target.repository, tag, digest))
        if not tags:
            pushed.append(Reference(target.client.registry, target.repository, None, digest))
    for reference in pushed:
        log(f"pushed {reference}")
    return pushed


def describe(content: LayoutContent) -> str:
    """One line for logs: the image's digest, kind and size."""
    kind = "index" if content.top.descriptor.media_type in _INDEX_TYPES else "manifest"
    total = sum(b.size for b in content.blobs)
    return f"{content.path}: {kind} {content.digest}, {len(content.blobs)} blobs, {total} bytes"
