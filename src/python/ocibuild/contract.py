"""The contract between the Pants plugin and the core: what crosses a Process's sandbox boundary.

The plugin writes one request as `request.json` into the sandbox, with the input files it names,
and runs `python -m ocibuild <command> --request=request.json` (`Request.argv()`); the core reads it
back with `<RequestClass>.from_json` and writes its outputs under the names below, which the plugin
reads with the result classes. Nothing else crosses: no flag names, no file names outside this module.

Standard library only: the plugin imports this module inside Pants' own process.

Adding a Process (e.g. publishing): a frozen dataclass subclassing `Request` with its `command`,
listed in `REQUESTS`, plus a module under ocibuild.cli whose `main` starts with
`request = read_request(MyRequest, argv)`. docs/ describe each request; tests/test_contract.py keeps
them in step with the fields here.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import ClassVar, Dict, Optional, Sequence, Tuple, Type, TypeVar

from ocibuild.common.validate import decode, encode
from ocibuild.errors import OciBuildError
from ocibuild.strictload import load_json

__all__ = [
    "OUTPUT_DIR",
    "REQUEST_FILE",
    "LAYER_BLOB",
    "LAYER_DESCRIPTOR",
    "IMAGE_LAYOUT",
    "IMAGE_METADATA",
    "OCI_ARCHIVE",
    "DOCKER_ARCHIVE",
    "SBOM_DIR",
    "INDEX_SBOM",
    "RELOCK",
    "LAYER_COMPRESSIONS",
    "Record",
    "Request",
    "ApkLockRequest",
    "ApkLayerRequest",
    "ApkFetchRequest",
    "FilesLayerRequest",
    "ImageLayer",
    "ImageConfig",
    "OciImageRequest",
    "LayerDescriptor",
    "PlatformImageMetadata",
    "ImageMetadata",
    "REQUESTS",
    "RESULTS",
    "docker_archive_name",
    "sbom_name",
    "is_request_argv",
    "read_request",
    "read_request_file",
]

# ---------------------------------------------------------------------------------------------
# Output names
# ---------------------------------------------------------------------------------------------

OUTPUT_DIR = "out"  # every command's outputs go under this folder of the sandbox
REQUEST_FILE = "request.json"  # where the plugin puts the request
LAYER_BLOB = "layer.tar.gz"  # a layer builder's blob ...
LAYER_DESCRIPTOR = "layer.json"  # ... and its descriptor (LayerDescriptor)
IMAGE_LAYOUT = "layout"  # oci-image: the OCI image layout folder
IMAGE_METADATA = "image.json"  # oci-image: ImageMetadata
OCI_ARCHIVE = "image.oci.tar"  # oci-image: the layout as an oci-archive
DOCKER_ARCHIVE = "image.docker.tar"  # oci-image: docker-archive of a one-platform image
SBOM_DIR = "sbom"  # oci-image: the SPDX 2.3 JSON SBOMs (docs/sbom.md), beside the layout
INDEX_SBOM = "index.spdx.json"  # oci-image: the image index's SBOM, in SBOM_DIR (several platforms only)

# How the core ends a message when the fix is to lock the resolve again; the plugin adds its command
# line (`pants generate-lockfiles --resolve=...`), which the core does not know.
RELOCK = "re-lock the resolve"

# oci-image `compression`: how the image's own layers are stored in its layout (docs/oci-image.md).
LAYER_COMPRESSIONS = ("gzip", "zstd")

# 9999-12-31T23:59:59Z: the last time RFC 3339 (four-digit years) can write
_MAX_CREATED = 253402300799

R = TypeVar("R", bound="Record")


def docker_archive_name(architecture: str, several_platforms: bool) -> str:
    """The docker-archive of one platform: `image.docker.tar`, or `image-<arch>.docker.tar` each."""
    return f"image-{architecture}.docker.tar" if several_platforms else DOCKER_ARCHIVE


def sbom_name(architecture: str) -> str:
    """A platform image's SBOM, in SBOM_DIR: `<arch>.spdx.json` (Alpine name, as the docker-archives)."""
    return f"{architecture}.spdx.json"


# ---------------------------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------------------------


class Record:
    """A frozen dataclass that is written as, and read from, one JSON object."""

    def to_json(self) -> bytes:
        """One key per line, a record's keys sorted and a mapping's in its order (env order is part of
        an image): byte-stable, and readable in a sandbox."""
        return (json.dumps(encode(self), indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls: Type[R], data: bytes, origin: str) -> R:
        """Parse and check; OciBuildError naming `origin` (and the key at fault) if it does not fit."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise OciBuildError(f"{origin}: not UTF-8 text") from None
        return decode(cls, load_json(text, origin), origin)


class Request(Record):
    """The input of one `python -m ocibuild <command>` Process."""

    command: ClassVar[str]

    def argv(self) -> Tuple[str, ...]:
        """The Process's arguments, with the request at `REQUEST_FILE` in its sandbox."""
        return (self.command, f"--request={REQUEST_FILE}")


def is_request_argv(argv: Sequence[str]) -> bool:
    """Whether a command was given a request file (the plugin's way) rather than flags (a person's)."""
    return bool(argv) and (argv[0] == "--request" or argv[0].startswith("--request="))


def read_request(cls: Type[R], argv: Sequence[str]) -> R:
    """The request a command was given with `--request FILE` (what the plugin passes)."""
    parser = argparse.ArgumentParser(prog=f"python -m ocibuild {getattr(cls, 'command', '')}")
    parser.add_argument("--request", required=True, help="the request JSON (see docs/)")
    return read_request_file(cls, parser.parse_args(list(argv)).request)


def read_request_file(cls: Type[R], path: str) -> R:
    """A request (or result) file, checked; one error line naming the file if it cannot be used."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OciBuildError(f"{path}: cannot read the request ({e.strerror or e})") from None
    return cls.from_json(data, str(path))


def _non_negative(name: str, value: Optional[int], most: Optional[int] = None) -> Optional[str]:
    if value is not None and (value < 0 or (most is not None and value > most)):
        bound = f" up to {most}" if most is not None else ""
        return f"`{name}` must be a non-negative integer{bound}, got {value}"
    return None


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApkLockRequest(Request):
    """apk-lock: resolve a spec into a lockfile at `output` (docs/apk-lockfile.md), or `check` it."""

    command: ClassVar[str] = "apk-lock"

    spec: str  # the apko-style YAML spec; keyring paths in it are relative to its folder
    output: str  # the lockfile to write (or to check)
    name: Optional[str] = None  # the spec's name recorded in the lock (default: `spec`)
    mirrors: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()  # URL prefix -> mirror prefixes, in order
    timeout: float = 30.0  # seconds per HTTP request
    retries: int = 3  # attempts per URL on connection errors and 5xx
    check: bool = False  # only compare the lock's spec checksum with the spec; fetch nothing

    def invalid_reason(self) -> Optional[str]:
        if self.retries < 1:
            return f"`retries` must be at least 1, got {self.retries}"
        return None if self.timeout > 0 else f"`timeout` must be positive, got {self.timeout}"


@dataclass(frozen=True)
class ApkLayerRequest(Request):
    """apk-layer: one architecture's layer of the lock's packages (docs/apk-layer.md)."""

    command: ClassVar[str] = "apk-layer"

    lockfile: str  # the lockfile (docs/apk-lockfile.md)
    arch: str  # Alpine architecture name
    packages_dir: str  # holds the packages, by the basename of their lock URL
    packages: Tuple[str, ...] = ()  # these and their lock dependencies; empty: the whole lock
    accounts: Optional[str] = None  # users and groups file (apko's accounts, as JSON)
    source_date_epoch: Optional[int] = None  # mtime of every entry; null: newest package build time
    allow_setuid: bool = False  # accept setuid/setgid files
    skip_scripts_of: Tuple[str, ...] = ()  # packages whose install scripts are safe to skip
    output_layer: str = f"{OUTPUT_DIR}/{LAYER_BLOB}"  # the layer blob to write
    output_descriptor: str = f"{OUTPUT_DIR}/{LAYER_DESCRIPTOR}"  # its LayerDescriptor

    def invalid_reason(self) -> Optional[str]:
        return _non_negative("source_date_epoch", self.source_date_epoch)


@dataclass(frozen=True)
class ApkFetchRequest(Request):
    """fetch-apk: one locked package, verified against its pin, written to `output`
    (docs/remote-cache.md). Every field is part of the Process's cache key: the plugin puts in it only
    strings that are the same on every machine sharing a cache."""

    command: ClassVar[str] = "fetch-apk"

    url: str  # the lock's URL of the package (its identity; messages name it)
    sha256: str  # hex sha256 of the whole .apk, from the lock
    size: int  # bytes of the .apk, from the lock
    output: str  # where the verified .apk goes (the plugin: `out/<basename of url>`)
    candidates: Tuple[str, ...] = ()  # where to fetch it from, in order; empty: `url` itself
    timeout: float = 30.0  # seconds per HTTP request
    retries: int = 3  # attempts per URL on connection errors and 5xx

    def invalid_reason(self) -> Optional[str]:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            return f"`sha256` must be 64 lowercase hex digits, got {self.sha256!r}"
        if self.retries < 1:
            return f"`retries` must be at least 1, got {self.retries}"
        if self.timeout <= 0:
            return f"`timeout` must be positive, got {self.timeout}"
        return _non_negative("size", self.size)


@dataclass(frozen=True)
class FilesLayerRequest(Request):
    """files-layer: a layer of files placed under one directory (docs/apk-layer.md, "File layers")."""

    command: ClassVar[str] = "files-layer"

    destination: str  # absolute directory in the image
    files: Tuple[str, ...]  # placed by basename
    owner: str = "0:0"  # numeric uid:gid
    mode: Optional[str] = None  # octal; null: 0755 if executable, else 0644
    source_date_epoch: int = 0  # mtime of every entry
    output_layer: str = f"{OUTPUT_DIR}/{LAYER_BLOB}"  # the layer blob to write
    output_descriptor: str = f"{OUTPUT_DIR}/{LAYER_DESCRIPTOR}"  # its LayerDescriptor

    def invalid_reason(self) -> Optional[str]:
        if not self.files:
            return "`files` must name at least one file"
        return _non_negative("source_date_epoch", self.source_date_epoch)


@dataclass(frozen=True)
class ImageLayer(Record):
    blob: str  # path of the layer blob, relative to the request file's folder
    descriptor: str  # its LayerDescriptor (layer.json)
    architecture: Optional[str] = None  # null: the layer serves every architecture
    created_by: Optional[str] = None  # the history entry's created_by


@dataclass(frozen=True)
class ImageConfig(Record):
    """What an image sets over its base; null (or empty) inherits the base's value."""

    entrypoint: Optional[Tuple[str, ...]] = None  # set without `cmd`, it drops the base's Cmd
    cmd: Optional[Tuple[str, ...]] = None  # arguments to the entrypoint
    env: Tuple[Tuple[str, str], ...] = ()  # ordered; merged over the base's by name
    user: Optional[str] = None  # `uid[:gid]` or a name
    workdir: Optional[str] = None  # absolute
    labels: Tuple[Tuple[str, str], ...] = ()  # merged over the base's
    exposed_ports: Tuple[str, ...] = ()  # `8080`, `8080/tcp`, `53/udp`; merged over the base's
    stop_signal: Optional[str] = None  # e.g. SIGTERM
    volumes: Tuple[str, ...] = ()  # merged over the base's


@dataclass(frozen=True)
class OciImageRequest(Request):
    """oci-image: layers stacked over an optional base (docs/oci-image.md); outputs under OUTPUT_DIR."""

    command: ClassVar[str] = "oci-image"

    repository: str  # a Docker image name (lowercase), recorded in the archives
    tag: str  # an OCI tag, recorded in index.json and the archives
    base: Optional[str] = None  # an OCI layout written by oci-image, or null (scratch)
    base_name: Optional[str] = None  # recorded as org.opencontainers.image.base.name
    layers: Tuple[ImageLayer, ...] = ()  # in order, bottom first
    architectures: Optional[Tuple[str, ...]] = None  # Alpine names; null: from the layers, else the base's
    config: ImageConfig = ImageConfig()  # applied over the base's config as a Dockerfile would
    annotations: Tuple[Tuple[str, str], ...] = ()  # the manifests' annotations
    created: Optional[int] = None  # SOURCE_DATE_EPOCH; null: newest layer mtime / base created
    compression: str = "gzip"  # of the image's own layers: "gzip" (as built) or "zstd" (re-encoded)
    output_dir: str = OUTPUT_DIR  # where the layout, archives and image.json go

    def invalid_reason(self) -> Optional[str]:
        if _non_negative("created", self.created, _MAX_CREATED):
            return (
                f"`created` must be a non-negative integer (SOURCE_DATE_EPOCH) up to {_MAX_CREATED} "
                "(year 9999) or null"
            )
        if self.compression not in LAYER_COMPRESSIONS:
            return f"`compression` is {self.compression!r}; use one of {', '.join(LAYER_COMPRESSIONS)}"
        return None


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerDescriptor(Record):
    """`layer.json`, written beside every layer blob by apk-layer and files-layer."""

    extra_keys_ignored: ClassVar[bool] = True  # builders add what they packed (`packages`, `files`)

    digest: str  # "sha256:<hex>" of the blob
    size: int  # bytes of the blob
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip"  # or the uncompressed `...tar`
    architecture: Optional[str] = None  # Alpine name; null: any
    schema: Optional[str] = None  # which builder wrote it, e.g. "ocibuild.apk-layer/v1"
    mtime: Optional[int] = None  # the mtime of every entry


@dataclass(frozen=True)
class PlatformImageMetadata(Record):
    architecture: str  # Alpine name (or the platform string when Alpine has none)
    manifest: str  # digest of the platform's manifest
    config: str  # digest of its config: the image ID runtimes show
    size: int  # manifest + config + compressed layers
    uncompressed_size: int  # bytes of its layers' tars
    docker_archive: str  # its docker-archive, in the output folder
    sbom: Optional[str] = None  # its SPDX 2.3 JSON SBOM, in the output folder (`sbom/<arch>.spdx.json`)


@dataclass(frozen=True)
class ImageMetadata(Record):
    """`image.json`, written by oci-image beside the layout and the archives."""

    repository: str
    tag: str
    reference: str  # repository:tag
    digest: str  # what the layout's index.json points at
    media_type: str  # of what index.json points at: a manifest, or an index for several platforms
    layout: str  # the layout folder, in the output folder
    oci_archive: str  # the oci-archive, in the output folder
    size: int  # bytes of all blobs in the layout
    uncompressed_size: int  # sum of the distinct layers' tar sizes
    platforms: Tuple[str, ...]  # e.g. "linux/amd64", "linux/arm64/v8"
    images: Tuple[Tuple[str, PlatformImageMetadata], ...]  # platform -> its PlatformImageMetadata
    sbom: Optional[str] = None  # the index's SBOM, in the output folder; null: one platform


# command -> request; a new Process adds its request here.
_REQUEST_CLASSES: Tuple[Type[Request], ...] = (
    ApkLockRequest,
    ApkLayerRequest,
    ApkFetchRequest,
    FilesLayerRequest,
    OciImageRequest,
)
REQUESTS: Dict[str, Type[Request]] = {r.command: r for r in _REQUEST_CLASSES}
# output file name -> what is in it
RESULTS: Dict[str, Type[Record]] = {LAYER_DESCRIPTOR: LayerDescriptor, IMAGE_METADATA: ImageMetadata}
