"""The SBOMs an image build writes beside its layout: `sbom/<arch>.spdx.json` per platform and
`sbom/index.spdx.json` for an index (names in ocibuild.contract; docs/sbom.md).

The build hands over what it has already: each platform's layer blobs (base layers included), the
manifest and config digests, and the lock facts of its apk layers (the `packages` apk-layer writes
into layer.json: control checksum, .apk sha256 and URL). The base image's packages get theirs from
the base's own SBOM, which the base build wrote beside its layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ocibuild.contract import INDEX_SBOM, SBOM_DIR, sbom_name
from ocibuild.errors import OciBuildError
from ocibuild.sbom.facts import BaseImageFacts, ImageFacts, IndexFacts
from ocibuild.sbom.layer_scan import LayerSource, image_layers
from ocibuild.sbom.spdx import image_sbom, index_sbom, platform_sbom
from ocibuild.strictload import load_json

__all__ = [
    "LockedApk",
    "PlatformSbomInput",
    "SbomFiles",
    "descriptor_packages",
    "base_sbom_packages",
    "write_image_sboms",
]

_Q1_PREFIX = "Q1"


@dataclass(frozen=True)
class LockedApk:
    """What the lock says of one .apk, as much as an SBOM needs (ocibuild.sbom.layer_scan.LockFacts)."""

    name: str
    version: str
    checksum: str  # C: "Q1..." of the control member
    sha256: Optional[str] = None  # hex sha256 of the whole .apk
    url: Optional[str] = None  # where the lock fetched it from


@dataclass(frozen=True)
class PlatformSbomInput:
    architecture: str  # Alpine name: names the file
    platform: str  # e.g. "linux/amd64"
    manifest_digest: str
    config_digest: str
    layers: Tuple[LayerSource, ...]  # bottom first, base layers included
    base: Optional[BaseImageFacts] = None


@dataclass(frozen=True)
class SbomFiles:
    """Paths relative to the output folder."""

    platforms: Dict[str, str]  # architecture -> `sbom/<arch>.spdx.json`
    index: Optional[str]  # `sbom/index.spdx.json`, or None for one platform


def descriptor_packages(descriptor_file: Path) -> Tuple[LockedApk, ...]:
    """The lock facts apk-layer records in a layer.json's `packages` (none for other layer kinds)."""
    origin = str(descriptor_file)
    try:
        data = load_json(descriptor_file.read_text(encoding="utf-8"), origin)
    except (OSError, UnicodeDecodeError) as e:
        raise OciBuildError(f"{origin}: cannot read the layer descriptor ({e})") from None
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, list):
        return ()
    out = []
    for entry in packages:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("name", "version", "checksum")
        ):
            raise OciBuildError(
                f"{origin}: `packages` entries need a name, version and checksum; rebuild the layer"
            )
        sha256, url = entry.get("sha256"), entry.get("url")
        out.append(
            LockedApk(
                entry["name"],
                entry["version"],
                entry["checksum"],
                sha256 if isinstance(sha256, str) else None,
                url if isinstance(url, str) else None,
            )
        )
    return tuple(out)


def _control_checksum(package: Dict[str, Any]) -> str:
    for annotation in package.get("annotations") or []:
        word = str(annotation.get("comment", "")).rsplit(" ", 1)[-1]
        if word.startswith(_Q1_PREFIX):
            return word
    return ""


def base_sbom_packages(document_file: Path) -> Tuple[LockedApk, ...]:
    """The APKs' lock facts out of a base image's SBOM written by this module (none if it has none:
    a base built before SBOMs existed, or by another tool)."""
    if not document_file.is_file():
        return ()
    try:
        doc = json.loads(document_file.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise OciBuildError(f"{document_file}: the base image's SBOM is not JSON; rebuild the base") from None
    packages = doc.get("packages") if isinstance(doc, dict) else None
    out = []
    for package in packages if isinstance(packages, list) else []:
        refs = [r.get("referenceLocator", "") for r in package.get("externalRefs") or []]
        if not any(str(r).startswith("pkg:apk/") for r in refs):
            continue
        sha256 = next(
            (
                c.get("checksumValue")
                for c in package.get("checksums") or []
                if c.get("algorithm") == "SHA256"
            ),
            None,
        )
        location = package.get("downloadLocation", "")
        out.append(
            LockedApk(
                str(package.get("name", "")),
                str(package.get("versionInfo", "")),
                _control_checksum(package),
                sha256,
                location if location not in ("", "NOASSERTION", "NONE") else None,
            )
        )
    return tuple(out)


def write_image_sboms(
    output_dir: Path,
    repository: str,
    tag: str,
    created: int,
    platforms: Sequence[PlatformSbomInput],
    locked: Sequence[LockedApk],
    index_digest: Optional[str] = None,
) -> SbomFiles:
    """Write each platform's document (and the index's, when `index_digest` is given) under
    `output_dir/sbom/`; the paths written, relative to `output_dir`."""
    folder = output_dir / SBOM_DIR
    folder.mkdir(parents=True, exist_ok=True)
    names: Dict[str, str] = {}
    documents: List[Tuple[ImageFacts, bytes]] = []
    for platform in platforms:
        layers, os_release = image_layers(platform.layers, locked)
        facts = ImageFacts(
            repository=repository,
            tag=tag,
            manifest_digest=platform.manifest_digest,
            config_digest=platform.config_digest,
            platform=platform.platform,
            created=created,
            layers=layers,
            base=platform.base,
            os_release=os_release,
        )
        document = image_sbom(facts)
        name = sbom_name(platform.architecture)
        (folder / name).write_bytes(document)
        names[platform.architecture] = f"{SBOM_DIR}/{name}"
        documents.append((facts, document))
    index_name = None
    if index_digest is not None:
        index = IndexFacts(
            repository, tag, index_digest, created, tuple(platform_sbom(f, d) for f, d in documents)
        )
        (folder / INDEX_SBOM).write_bytes(index_sbom(index))
        index_name = f"{SBOM_DIR}/{INDEX_SBOM}"
    return SbomFiles(names, index_name)
