"""Layer blobs: checking a tar (plain, gzip'd or zstd'd) against its digest, size and diff_id, and
reading it uncompressed."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Tuple, Union

from ocibuild.common.compression import GzipStream, ZstdStream, open_zstd
from ocibuild.contract import LayerDescriptor
from ocibuild.errors import OciBuildError
from ocibuild.oci.descriptors import (
    GZIP_LAYER_MEDIA_TYPES,
    LAYER_MEDIA_TYPES,
    LAYER_TAR_GZIP,
    LAYER_TAR_ZSTD,
    ZSTD_LAYER_MEDIA_TYPES,
    Descriptor,
    check_digest,
)

__all__ = [
    "LayerFacts",
    "LayerInput",
    "open_uncompressed",
    "inspect_layer",
    "verify_layer",
    "load_layer_input",
]


@dataclass(frozen=True)
class LayerFacts:
    """What reading a whole layer blob tells: its descriptor, diff_id and uncompressed size."""

    descriptor: Descriptor
    diff_id: str
    uncompressed_size: int


@dataclass(frozen=True)
class LayerInput:
    """A new layer to stack: its blob file, its facts, the Alpine arch it is for (None: all) and history text."""

    blob: Path
    facts: LayerFacts
    architecture: Optional[str]
    created_by: str


def open_uncompressed(path: Path, media_type: str) -> BinaryIO:
    """The layer's tar stream (gzip members or zstd frames decompressed when the media type says so)."""
    if media_type in GZIP_LAYER_MEDIA_TYPES:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if media_type in ZSTD_LAYER_MEDIA_TYPES:
        return open_zstd(str(path))
    return open(path, "rb")


def _decoder(media_type: str) -> Optional[Union[GzipStream, ZstdStream]]:
    if media_type in GZIP_LAYER_MEDIA_TYPES:
        return GzipStream()
    if media_type in ZSTD_LAYER_MEDIA_TYPES:
        return ZstdStream()
    return None  # an uncompressed tar


def _hash_layer(path: Path, media_type: str) -> Tuple[LayerFacts, Optional[str]]:
    """Hash the blob and its decompressed tar in one pass; a broken compressed stream is returned, not
    raised, so that a blob that is simply not the expected one is reported as such."""
    if media_type not in LAYER_MEDIA_TYPES:
        raise OciBuildError(
            f"{path}: layer media type {media_type!r} is not supported; use {LAYER_TAR_GZIP}, "
            f"{LAYER_TAR_ZSTD} or an uncompressed tar"
        )
    compressed = hashlib.sha256()
    uncompressed = hashlib.sha256()
    size = 0
    uncompressed_size = 0
    problem: Optional[str] = None
    stream = _decoder(media_type)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                compressed.update(chunk)
                size += len(chunk)
                data = stream.feed(chunk) if stream is not None else chunk
                uncompressed.update(data)
                uncompressed_size += len(data)
    except OSError as e:
        raise OciBuildError(f"{path}: cannot read the layer ({e.strerror or e})") from None
    if stream is not None:
        problem = stream.finish()
    facts = LayerFacts(
        Descriptor(media_type, "sha256:" + compressed.hexdigest(), size),
        "sha256:" + uncompressed.hexdigest(),
        uncompressed_size,
    )
    return facts, problem


def inspect_layer(path: Path, media_type: str) -> LayerFacts:
    """Digest, size, diff_id and uncompressed size of a layer blob."""
    facts, problem = _hash_layer(path, media_type)
    if problem:
        raise OciBuildError(f"{path}: {problem}; rebuild the layer")
    return facts


def verify_layer(path: Path, media_type: str, digest: str, size: int, diff_id: Optional[str]) -> LayerFacts:
    """inspect_layer, failing with one line naming the blob unless it matches what its descriptor claims."""
    facts, problem = _hash_layer(path, media_type)
    if facts.descriptor.digest != digest or facts.descriptor.size != size:
        raise OciBuildError(
            f"{path}: blob does not match its descriptor (expected {digest}, {size} bytes; "
            f"found {facts.descriptor.digest}, {facts.descriptor.size} bytes): rebuild the layer"
        )
    if problem:
        raise OciBuildError(f"{path}: {problem}; rebuild the layer")
    if diff_id is not None and facts.diff_id != diff_id:
        raise OciBuildError(
            f"{path}: uncompressed layer has diff_id {facts.diff_id}, not {diff_id} as its descriptor says: "
            "rebuild the layer"
        )
    return facts


def load_layer_input(
    blob: Path, descriptor_file: Path, architecture: Optional[str], created_by: str
) -> LayerInput:
    """A layer from the `layer.json` written by the layer builders, checked against its blob."""
    try:
        data = descriptor_file.read_bytes()
    except OSError as e:
        raise OciBuildError(
            f"{descriptor_file}: cannot read the layer descriptor ({e.strerror or e})"
        ) from None
    meta = LayerDescriptor.from_json(data, str(descriptor_file))
    described_arch = meta.architecture
    if architecture and described_arch and architecture != described_arch:
        raise OciBuildError(
            f"{descriptor_file}: the layer is built for {described_arch}, but the request says {architecture}"
        )
    facts = verify_layer(
        blob,
        meta.media_type,
        check_digest(meta.digest, f"{descriptor_file} `digest`"),
        meta.size,
        check_digest(meta.diff_id, f"{descriptor_file} `diff_id`"),
    )
    return LayerInput(blob, facts, architecture or described_arch or None, created_by)
