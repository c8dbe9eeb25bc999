"""Images for the SBOM tests (tests/sbom): the static base built by the core from the real Alpine slice,
an app image on top of it, and the SBOM facts of a built image read back from its layout."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ocibuild.apk.lockfile import Lockfile, load_lockfile
from ocibuild.layer.accounts import parse_accounts
from ocibuild.layer.apk_layer import ApkLayerOptions, build_apk_layer
from ocibuild.oci.image import ImageRequest, ImageResult, build_image
from ocibuild.oci.layers import load_layer_input
from ocibuild.oci.layout import load_layout
from ocibuild.sbom.facts import BaseImageFacts, ImageFacts
from ocibuild.sbom.layer_scan import LayerSource, image_layers
from testutil.apk_layers import NONROOT, alpine_packages_dir
from testutil.oci_layers import layer_input
from testutil.paths import repo_root

CREATED = 1700000000
STATIC = "images/static"
APP = "images/app"


def static_lock() -> Lockfile:
    path = repo_root() / "images" / "static" / "apko.lock.json"
    return load_lockfile(path.read_text(), str(path))


def build_static(workdir: Path) -> ImageResult:
    """images/static as its BUILD describes it: one apk_layer of the lock, nonroot account."""
    lock = static_lock()
    out = workdir / "static-layer"
    out.mkdir(parents=True, exist_ok=True)
    options = ApkLayerOptions(
        arch="x86_64", accounts=parse_accounts(NONROOT, "accounts"), source_date_epoch=CREATED
    )
    build_apk_layer(
        lock, str(alpine_packages_dir()), options, str(out / "layer.tar.gz"), str(out / "layer.json")
    )
    layer = load_layer_input(
        out / "layer.tar.gz", out / "layer.json", "x86_64", "apk_layer //images/static:packages"
    )
    request = ImageRequest(repository=STATIC, tag="latest", layers=(layer,), created=CREATED)
    return build_image(request, workdir / "static")


def build_app(workdir: Path, base: Path) -> ImageResult:
    """An app image: a files layer on top of the static base."""
    files = {"app/run.sh": b"#!/bin/sh\necho app\n", "app/config.json": b'{"a": 1}\n'}
    layer = layer_input(workdir / "app-in", files, None, "app", "oci_layer //app:files")
    request = ImageRequest(
        repository=APP, tag="v1", layers=(layer,), base=base, base_name=f"{STATIC}:latest", created=CREATED
    )
    return build_image(request, workdir / "app")


def image_facts(
    repository: str,
    tag: str,
    layout: Path,
    base: Optional[Tuple[str, Path]] = None,
    lock: Optional[Lockfile] = None,
) -> ImageFacts:
    """The SBOM facts of a one-platform image, read back from its layout (and its base's, to tell
    which layers came from there)."""
    image = load_layout(layout).images[0]
    history = [h.get("created_by", "") for h in image.config.get("history", []) if not h.get("empty_layer")]
    base_facts = None
    base_digests: Sequence[str] = ()
    if base is not None:
        base_image = load_layout(base[1]).images[0]
        base_facts = BaseImageFacts(base[0], base_image.manifest_descriptor.digest)
        base_digests = [f.descriptor.digest for f in base_image.layers]
    sources = []
    for i, f in enumerate(image.layers):
        sources.append(
            LayerSource(
                blob=layout / "blobs" / "sha256" / f.descriptor.digest.split(":")[1],
                digest=f.descriptor.digest,
                diff_id=f.diff_id,
                created_by=history[i] if i < len(history) else "",
                from_base=i < len(base_digests) and base_digests[i] == f.descriptor.digest,
            )
        )
    layers, os_release = image_layers(sources, (lock or static_lock()).packages)
    return ImageFacts(
        repository=repository,
        tag=tag,
        manifest_digest=image.manifest_descriptor.digest,
        config_digest=image.config_descriptor.digest,
        platform=str(image.platform),
        created=CREATED,
        layers=layers,
        base=base_facts,
        os_release=os_release,
    )


def locked_versions() -> Dict[str, str]:
    return {p.name: p.version for p in static_lock().packages}


def alpine_index_licenses() -> List[str]:
    """Every distinct L: of the mirror's Alpine 3.19 index."""
    with tarfile.open(alpine_packages_dir() / "APKINDEX.tar.gz") as tar:
        member = tar.extractfile("APKINDEX")
        assert member is not None
        text = member.read().decode()
    return sorted({line[2:] for line in text.splitlines() if line.startswith("L:")})
