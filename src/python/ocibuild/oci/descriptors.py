"""OCI media types, content descriptors and the canonical JSON every manifest/config/index is written in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from ocibuild.common.digests import sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.oci.platforms import Platform

__all__ = [
    "MANIFEST",
    "INDEX",
    "CONFIG",
    "LAYER_TAR_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_CONFIG",
    "LAYER_MEDIA_TYPES",
    "GZIP_LAYER_MEDIA_TYPES",
    "REF_NAME",
    "BASE_DIGEST",
    "BASE_NAME",
    "canonical_json",
    "check_digest",
    "Descriptor",
]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Docker's names for the same things, accepted when reading a base image.
_DOCKER_LAYER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

LAYER_MEDIA_TYPES = (_LAYER_TAR, LAYER_TAR_GZIP, _DOCKER_LAYER_TAR_GZIP)
GZIP_LAYER_MEDIA_TYPES = (LAYER_TAR_GZIP, _DOCKER_LAYER_TAR_GZIP)

REF_NAME = "org.opencontainers.image.ref.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
BASE_NAME = "org.opencontainers.image.base.name"

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def canonical_json(value: Any) -> bytes:
    """The byte-stable form: sorted keys, compact separators, UTF-8, no trailing newline."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_digest(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise OciBuildError(
            f"{where}: {value!r} is not a sha256 digest (`sha256:` + 64 lowercase hex digits)"
        )
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
        if not isinstance(value, dict):
            raise OciBuildError(f"{where}: a descriptor must be a JSON object, got {type(value).__name__}")
        media_type = value.get("mediaType")
        size = value.get("size")
        if not isinstance(media_type, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise OciBuildError(f"{where}: a descriptor needs a string `mediaType` and a non-negative `size`")
        annotations = value.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise OciBuildError(f"{where}: descriptor `annotations` must map strings to strings")
        platform = value.get("platform")
        return cls(
            media_type,
            check_digest(value.get("digest"), where),
            size,
            tuple(sorted(annotations.items())),
            Platform.from_json(platform, where) if platform is not None else None,
        )

    @classmethod
    def of_bytes(cls, media_type: str, data: bytes) -> "Descriptor":
        return cls(media_type, sha256_digest(data), len(data))
