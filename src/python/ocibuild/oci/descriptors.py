"""OCI media types, content descriptors and the canonical JSON every manifest/config/index is written in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ocibuild.common.digests import is_sha256_digest, sha256_digest
from ocibuild.common.validate import decode
from ocibuild.errors import OciBuildError
from ocibuild.oci.platforms import Platform, PlatformJson

__all__ = [
    "MANIFEST",
    "INDEX",
    "CONFIG",
    "LAYER_TAR_GZIP",
    "LAYER_TAR_ZSTD",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_CONFIG",
    "LAYER_MEDIA_TYPES",
    "GZIP_LAYER_MEDIA_TYPES",
    "ZSTD_LAYER_MEDIA_TYPES",
    "REF_NAME",
    "BASE_DIGEST",
    "BASE_NAME",
    "canonical_json",
    "check_digest",
    "digest_problem",
    "Descriptor",
    "DescriptorJson",
    "ManifestJson",
    "ImageIndexJson",
]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Read by podman/containers-storage and Docker >= 23, not by Docker 20.10 (docs/oci-image.md).
LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Docker's names for the same things, accepted when reading a base image.
_DOCKER_LAYER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

LAYER_MEDIA_TYPES = (_LAYER_TAR, LAYER_TAR_GZIP, _DOCKER_LAYER_TAR_GZIP, LAYER_TAR_ZSTD)
GZIP_LAYER_MEDIA_TYPES = (LAYER_TAR_GZIP, _DOCKER_LAYER_TAR_GZIP)
ZSTD_LAYER_MEDIA_TYPES = (LAYER_TAR_ZSTD,)

REF_NAME = "org.opencontainers.image.ref.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
BASE_NAME = "org.opencontainers.image.base.name"


def canonical_json(value: Any) -> bytes:
    """The byte-stable form: sorted keys, compact separators, UTF-8, no trailing newline."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_problem(value: Any) -> Optional[str]:
    """What is wrong with `value` as a sha256 digest, or None."""
    if not is_sha256_digest(value):
        return f"{value!r} is not a sha256 digest (`sha256:` + 64 lowercase hex digits)"
    return None


def check_digest(value: Any, where: str) -> str:
    problem = digest_problem(value)
    if problem:
        raise OciBuildError(f"{where}: {problem}")
    return value


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Tuple[Tuple[str, str], ...] = field(default=())  # sorted pairs
    platform: Optional[Platform] = None

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def annotation(self, key: str) -> Optional[str]:
        return dict(self.annotations).get(key)

    def with_annotations(self, annotations: Mapping[str, str]) -> "Descriptor":
        return Descriptor(
            self.media_type, self.digest, self.size, tuple(sorted(annotations.items())), self.platform
        )

    def with_platform(self, platform: Optional[Platform]) -> "Descriptor":
        return Descriptor(self.media_type, self.digest, self.size, self.annotations, platform)

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, value: Any, where: str) -> "Descriptor":
        return decode(DescriptorJson, value, where).descriptor()

    @classmethod
    def of_bytes(cls, media_type: str, data: bytes) -> "Descriptor":
        return cls(media_type, sha256_digest(data), len(data))


@dataclass(frozen=True)
class DescriptorJson:
    """A descriptor as an index or manifest writes it, for the core's validator."""

    extra_keys_ignored = True  # urls, artifactType, data: not used here
    mediaType: str
    digest: str
    size: int
    annotations: Optional[Tuple[Tuple[str, str], ...]] = None
    platform: Optional[PlatformJson] = None

    def invalid_reason(self) -> Optional[Tuple[str, str]]:
        if self.size < 0:
            return ("size", f"{self.size} is negative")
        problem = digest_problem(self.digest)
        return ("digest", problem) if problem else None

    def descriptor(self) -> Descriptor:
        return Descriptor(
            self.mediaType,
            self.digest,
            self.size,
            tuple(sorted(self.annotations or ())),
            self.platform.platform() if self.platform is not None else None,
        )


@dataclass(frozen=True)
class ManifestJson:
    """The keys of an image manifest that are read here (a Docker v2 manifest has the same)."""

    extra_keys_ignored = True  # schemaVersion, mediaType, subject, ...
    config: DescriptorJson
    layers: Tuple[DescriptorJson, ...] = ()
    annotations: Optional[Tuple[Tuple[str, str], ...]] = None

    def annotation(self, key: str) -> Optional[str]:
        return dict(self.annotations or ()).get(key)


@dataclass(frozen=True)
class ImageIndexJson:
    """The keys of an image index (a layout's index.json, or a Docker manifest list) read here."""

    extra_keys_ignored = True  # schemaVersion, mediaType, subject, ...
    manifests: Tuple[DescriptorJson, ...] = ()
    annotations: Optional[Tuple[Tuple[str, str], ...]] = None

    def annotation(self, key: str) -> Optional[str]:
        return dict(self.annotations or ()).get(key)

    def descriptors(self) -> Tuple[Descriptor, ...]:
        return tuple(m.descriptor() for m in self.manifests)
