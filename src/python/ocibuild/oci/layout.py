"""OCI image layouts on disk: reading one (every blob checked against its digest) and writing one."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

from ocibuild.common.atomic import atomic_output, write_bytes_atomically
from ocibuild.common.digests import sha256_digest
from ocibuild.common.validate import decode
from ocibuild.errors import OciBuildError
from ocibuild.oci.descriptors import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX,
    MANIFEST,
    REF_NAME,
    Descriptor,
    ImageIndexJson,
    ManifestJson,
    canonical_json,
)
from ocibuild.oci.layers import LayerFacts, verify_layer
from ocibuild.oci.platforms import Platform, same_platform
from ocibuild.strictload import load_json

__all__ = [
    "OCI_LAYOUT_FILE",
    "INDEX_FILE",
    "LayoutImage",
    "OciLayout",
    "blob_path",
    "load_layout",
    "LayoutWriter",
    "layout_index",
    "layout_files",
    "pick_index_entry",
    "read_verified_blob",
]

OCI_LAYOUT_FILE = "oci-layout"
_OCI_LAYOUT_CONTENT = {"imageLayoutVersion": "1.0.0"}
INDEX_FILE = "index.json"
_MANIFEST_TYPES = (MANIFEST, DOCKER_MANIFEST)
_INDEX_TYPES = (INDEX, DOCKER_MANIFEST_LIST)


@dataclass(frozen=True)
class LayoutImage:
    """One platform's image in a layout: manifest, config and layers, all verified."""

    platform: Platform
    manifest_descriptor: Descriptor
    manifest: Dict[str, Any]
    config_descriptor: Descriptor
    config: Dict[str, Any]
    layers: Tuple[LayerFacts, ...]


@dataclass(frozen=True)
class OciLayout:
    path: Path
    top: Descriptor  # the index.json entry: an image manifest or an image index
    images: Tuple[LayoutImage, ...]  # sorted by platform

    def blob_path(self, digest: str) -> Path:
        return blob_path(self.path, digest)

    def image_for(self, platform: Platform) -> LayoutImage:
        for image in self.images:
            if same_platform(image.platform, platform):
                return image
        have = ", ".join(str(i.platform) for i in self.images)
        raise OciBuildError(
            f"{self.path}: the base image has no {platform} image (it has {have}); "
            f"build the base for {platform} too or drop that architecture"
        )


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hex_digest


def _json_text(data: bytes, origin: str, what: str) -> Any:
    """Parse JSON bytes strictly: a duplicate key is an error naming it and its line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OciBuildError(f"{origin}: {what} is not UTF-8 JSON ({e})") from None
    return load_json(text, origin)


def _read_json(path: Path, what: str) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OciBuildError(f"{path}: missing {what}; is this an OCI image layout?") from None
    except OSError as e:
        raise OciBuildError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    return _json_text(data, str(path), what)


@dataclass(frozen=True)
class _OciLayoutJson:
    extra_keys_ignored = True
    imageLayoutVersion: str

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        if self.imageLayoutVersion != "1.0.0":
            return (
                "imageLayoutVersion",
                f"is {self.imageLayoutVersion!r}: only OCI image layout 1.0.0 is read",
            )
        return None


@dataclass(frozen=True)
class _RootfsJson:
    extra_keys_ignored = True  # type
    diff_ids: Tuple[str, ...] = ()


@dataclass(frozen=True)
class _ConfigJson:
    """The keys of an image config read here: the platform and the layers' diff_ids."""

    extra_keys_ignored = True  # config, history, created, ...: kept as they are, not judged here
    os: Optional[str] = None
    architecture: Optional[str] = None
    variant: Optional[str] = None
    rootfs: Optional[_RootfsJson] = None

    def platform(self) -> Platform:
        return Platform(self.os or "", self.architecture or "", self.variant or "")


def _blob_where(path: Path, what: str) -> str:
    return f"{path} ({what} blob)"


def read_verified_blob(layout: Path, descriptor: Descriptor, what: str) -> bytes:
    """The bytes of a (small) blob of the layout, checked against the descriptor's digest and size."""
    path = blob_path(layout, descriptor.digest)
    try:
        data = path.read_bytes()
    except OSError:
        raise OciBuildError(
            f"{path}: missing {what} blob {descriptor.digest}; the layout is incomplete"
        ) from None
    found = sha256_digest(data)
    if found != descriptor.digest or len(data) != descriptor.size:
        raise OciBuildError(
            f"{path}: {what} blob does not match its digest (expected {descriptor.digest}, {descriptor.size} bytes; "
            f"found {found}, {len(data)} bytes): the layout is corrupt, rebuild it"
        )
    return data


def _read_json_blob(layout: Path, descriptor: Descriptor, what: str) -> Dict[str, Any]:
    path = blob_path(layout, descriptor.digest)
    data = read_verified_blob(layout, descriptor, what)
    value = _json_text(data, _blob_where(path, what), what)
    if not isinstance(value, dict):
        raise OciBuildError(f"{path}: {what} blob must be a JSON object")
    return value


def pick_index_entry(index: Any, where: str, tag: Optional[str]) -> Descriptor:
    """The entry of a layout's index.json (parsed) tagged `tag`, or its only one."""
    entries = list(decode(ImageIndexJson, index, where).descriptors())
    if tag is not None:
        entries = [e for e in entries if e.annotation(REF_NAME) == tag]
    if len(entries) != 1:
        wanted = f"tagged {tag!r}" if tag is not None else "in all"
        raise OciBuildError(
            f"{where}: expected exactly one image {wanted}, found {len(entries)}; name the tag"
        )
    return entries[0]


def _load_image(layout: Path, descriptor: Descriptor, checked: Dict[str, LayerFacts]) -> LayoutImage:
    manifest = _read_json_blob(layout, descriptor, "manifest")
    where = str(blob_path(layout, descriptor.digest))
    manifest_json = decode(
        ManifestJson, manifest, _blob_where(blob_path(layout, descriptor.digest), "manifest")
    )
    config_descriptor = manifest_json.config.descriptor()
    config = _read_json_blob(layout, config_descriptor, "config")
    config_json = decode(
        _ConfigJson, config, _blob_where(blob_path(layout, config_descriptor.digest), "config")
    )
    diff_ids = config_json.rootfs.diff_ids if config_json.rootfs is not None else ()
    layer_descriptors = [d.descriptor() for d in manifest_json.layers]
    if len(diff_ids) != len(layer_descriptors):
        raise OciBuildError(
            f"{where}: the manifest has {len(layer_descriptors)} layers but its config "
            f"{config_descriptor.digest} lists {len(diff_ids)} diff_ids: the layout is corrupt"
        )
    layers = []
    for layer, diff_id in zip(layer_descriptors, diff_ids):
        if layer.digest not in checked:
            facts = verify_layer(
                blob_path(layout, layer.digest), layer.media_type, layer.digest, layer.size, diff_id
            )
            checked[layer.digest] = facts
        layers.append(checked[layer.digest])
    platform = config_json.platform()
    if not platform.os or not platform.architecture:
        if descriptor.platform is None:
            raise OciBuildError(
                f"{where}: neither the config nor the index names the image's os/architecture"
            )
        platform = descriptor.platform
    return LayoutImage(
        platform, descriptor.with_platform(platform), manifest, config_descriptor, config, tuple(layers)
    )


def load_layout(path: Path, tag: Optional[str] = None) -> OciLayout:
    """Parse the layout at `path`: the image tagged `tag` (or the only one), every blob checked."""
    path = Path(path)
    decode(_OciLayoutJson, _read_json(path / OCI_LAYOUT_FILE, "oci-layout file"), str(path / OCI_LAYOUT_FILE))
    index = _read_json(path / INDEX_FILE, "index.json")
    top = pick_index_entry(index, str(path / INDEX_FILE), tag)
    checked: Dict[str, LayerFacts] = {}
    if top.media_type in _MANIFEST_TYPES:
        images = [_load_image(path, top, checked)]
    elif top.media_type in _INDEX_TYPES:
        image_index = _read_json_blob(path, top, "image index")
        index_blob = blob_path(path, top.digest)
        images = [
            _load_image(path, m, checked)
            for m in decode(ImageIndexJson, image_index, _blob_where(index_blob, "image index")).descriptors()
            if m.media_type in _MANIFEST_TYPES
        ]
        if not images:
            raise OciBuildError(f"{index_blob}: the image index lists no image manifests")
    else:
        raise OciBuildError(
            f"{path / INDEX_FILE}: unsupported media type {top.media_type!r} for {top.digest}"
        )
    images.sort(key=lambda i: i.platform)
    return OciLayout(path, top, tuple(images))


class LayoutWriter:
    """Writes a new layout under `root`: blobs by content, then `oci-layout` and `index.json`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        write_bytes_atomically(str(path), data)

    def add_bytes(self, media_type: str, data: bytes) -> Descriptor:
        descriptor = Descriptor.of_bytes(media_type, data)
        path = blob_path(self.root, descriptor.digest)
        if not path.exists():
            self._write(path, data)
        return descriptor

    def add_json(self, media_type: str, value: Any) -> Descriptor:
        return self.add_bytes(media_type, canonical_json(value))

    def add_file(self, source: Path, descriptor: Descriptor) -> None:
        """Copy a blob whose digest the caller has already verified, byte for byte."""
        path = blob_path(self.root, descriptor.digest)
        if path.exists():
            return
        with open(source, "rb") as src, atomic_output(str(path)) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    def add_written(self, media_type: str, write: Callable[[BinaryIO], None]) -> Descriptor:
        """A blob that `write` streams into the file it is given (too big to hold in memory), named
        after its digest once complete."""
        folder = self.root / "blobs" / "sha256"
        fd, staging = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                out = _HashingWriter(f)
                write(out)  # type: ignore[arg-type]
            descriptor = Descriptor(media_type, "sha256:" + out.sha256.hexdigest(), out.size)
            os.chmod(staging, 0o644)
            os.replace(staging, blob_path(self.root, descriptor.digest))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staging)
            raise
        return descriptor

    def finish(self, entries: Sequence[Descriptor]) -> None:
        self._write(self.root / OCI_LAYOUT_FILE, canonical_json(_OCI_LAYOUT_CONTENT))
        self._write(self.root / INDEX_FILE, layout_index(entries))


class _HashingWriter:
    """A file that hashes and counts what is written to it."""

    def __init__(self, f: BinaryIO) -> None:
        self._file = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()


def layout_index(entries: Sequence[Descriptor]) -> bytes:
    """The bytes of a layout's index.json listing `entries`."""
    return canonical_json(
        {"schemaVersion": 2, "mediaType": INDEX, "manifests": [e.to_json() for e in entries]}
    )


def layout_files(root: Path) -> List[str]:
    """The layout's files, relative and sorted: what an oci-archive holds."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
