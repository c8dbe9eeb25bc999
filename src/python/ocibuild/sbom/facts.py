"""What an SBOM says about one image, as plain values: the image build gathers them (from the lock,
the layers and the manifest it wrote), `ocibuild.sbom.spdx` turns them into a document.

Nothing here reads a clock, the host or the environment: the same facts always give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

APK = "apk"
FILES = "files"
LAYER_KINDS = (APK, FILES)


@dataclass(frozen=True)
class ApkPackageFacts:
    """One installed APK: its installed-database record (`lib/apk/db/installed`) and, from the lock,
    the .apk's sha256 and download URL (None when unknown, e.g. for a base image's layers)."""

    name: str  # P:
    version: str  # V:
    architecture: str  # A:
    license: str = ""  # L:, as abuild wrote it
    origin: str = ""  # o: the source package (aports directory) it was built from
    maintainer: str = ""  # m: "Name <email>"
    url: str = ""  # U: the project's home page
    description: str = ""  # T:
    control_checksum: str = ""  # C: "Q1" + base64 sha1 of the control member
    size: Optional[int] = None  # S: bytes of the .apk
    apk_sha256: Optional[str] = None  # hex sha256 of the whole .apk (the lock's `sha256`)
    download_location: Optional[str] = None  # the lock's URL of the .apk
    depends: Tuple[str, ...] = ()  # names of the image's packages it depends on (sorted, no self)


@dataclass(frozen=True)
class FileFacts:
    """A regular file of a files layer (`oci_layer`); path relative to the image root, no leading `/`."""

    path: str
    sha256: str  # hex
    sha1: str  # hex; SPDX 2.3 requires a SHA1 for every file and for the package verification code


@dataclass(frozen=True)
class LayerFacts:
    digest: str  # "sha256:<hex>" of the blob, as in the manifest
    diff_id: str  # "sha256:<hex>" of the uncompressed tar, as in the config
    kind: str  # APK or FILES
    packages: Tuple[ApkPackageFacts, ...] = ()  # APK layers
    files: Tuple[FileFacts, ...] = ()  # FILES layers
    created_by: str = ""  # the history step, e.g. "apk_layer //images/static:packages"
    from_base: bool = False  # one of the base image's layers


@dataclass(frozen=True)
class OsRelease:
    """The fields of /etc/os-release an SBOM and a scanner use (os-release(5))."""

    id: str  # ID, e.g. "alpine"
    version_id: str  # VERSION_ID, e.g. "3.19.1"
    name: str = ""  # NAME, e.g. "Alpine Linux"
    pretty_name: str = ""  # PRETTY_NAME
    home_url: str = ""  # HOME_URL


@dataclass(frozen=True)
class BaseImageFacts:
    reference: str  # what the build named, e.g. "images/static:latest"
    digest: str  # the base's manifest digest for this platform


@dataclass(frozen=True)
class ImageFacts:
    """One platform image."""

    repository: str  # e.g. "images/static" or "registry.example.com/team/app"
    tag: str
    manifest_digest: str  # "sha256:<hex>"
    config_digest: str
    platform: str  # OCI platform, e.g. "linux/amd64" or "linux/arm64/v8"
    created: int  # seconds since the epoch: SOURCE_DATE_EPOCH, or the image config's `created`
    layers: Tuple[LayerFacts, ...] = ()  # bottom first, base image's layers included
    base: Optional[BaseImageFacts] = None
    os_release: Optional[OsRelease] = None  # None when the image has no /etc/os-release

    @property
    def architecture(self) -> str:
        """The OCI architecture ("amd64"), the second part of the platform."""
        parts = self.platform.split("/")
        return parts[1] if len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class PlatformSbom:
    """A per-platform SBOM as the index SBOM refers to it."""

    image: ImageFacts
    document_namespace: str
    sha256: str  # hex sha256 of the document's bytes


@dataclass(frozen=True)
class IndexFacts:
    repository: str
    tag: str
    index_digest: str  # "sha256:<hex>" of the image index
    created: int
    platforms: Tuple[PlatformSbom, ...]
