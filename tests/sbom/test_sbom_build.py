"""The SBOMs `oci-image` writes beside the layout (ocibuild.sbom.build through ocibuild.oci.image):
the lock facts from apk-layer's layer.json, the base's from its own SBOM, an index's document."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict

import pytest
from ocibuild.contract import ImageLayer, ImageMetadata, OciImageRequest
from ocibuild.oci.image import ImageRequest, build_image
from ocibuild.oci.request import image_request
from testutil.oci_layers import layer_input
from testutil.sbom_images import CREATED, build_static, static_lock


def _apk_packages(doc: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {
        p["name"]: p
        for p in doc["packages"]
        if any(r["referenceLocator"].startswith("pkg:apk/") for r in p.get("externalRefs", []))
    }


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """images/static from the apk layer's layer.json (as the plugin passes it), and an app on it."""
    work = tmp_path_factory.mktemp("build")
    build_static(work)  # writes static-layer/layer.tar.gz and layer.json
    static = OciImageRequest(
        repository="images/static",
        tag="latest",
        layers=(ImageLayer("static-layer/layer.tar.gz", "static-layer/layer.json", "x86_64"),),
        created=CREATED,
    )
    build_image(image_request(static, work), work / "static-out")
    app_layer = layer_input(work / "app-in", {"app/run.sh": b"#!/bin/sh\necho app\n"}, None, "app")
    app = ImageRequest(
        repository="images/app",
        tag="v1",
        layers=(app_layer,),
        base=work / "static-out" / "layout",
        base_name="images/static:latest",
        created=CREATED,
    )
    build_image(app, work / "app-out")
    return work


def test_apk_packages_carry_the_lock_facts_in_the_image_and_the_one_built_on_it(images: Path) -> None:
    lock = {p.name: p for p in static_lock().packages}
    for out in ("static-out", "app-out"):
        metadata = ImageMetadata.from_json((images / out / "image.json").read_bytes(), out)
        ((_, platform),) = metadata.images
        assert platform.sbom == "sbom/x86_64.spdx.json" and metadata.sbom is None
        doc = json.loads((images / out / platform.sbom).read_bytes())
        packages = _apk_packages(doc)
        assert set(packages) == set(lock), out
        for name, pkg in packages.items():
            assert pkg["checksums"] == [{"algorithm": "SHA256", "checksumValue": lock[name].sha256}], out
            assert pkg["downloadLocation"] == lock[name].url
        assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
        (described,) = [
            r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES"
        ]
        image = next(p for p in doc["packages"] if p["SPDXID"] == described)
        assert image["versionInfo"] == metadata.digest
    app = json.loads((images / "app-out" / "sbom" / "x86_64.spdx.json").read_bytes())
    static_digest = json.loads((images / "static-out" / "image.json").read_bytes())["digest"]
    base = [p for p in app["packages"] if p["name"] == "images/static:latest"]
    assert [p["versionInfo"] for p in base] == [static_digest]


def test_an_index_gets_each_platforms_document_and_its_own(tmp_path: Path) -> None:
    layers = tuple(
        layer_input(tmp_path / arch, {"etc/hello": arch.encode()}, arch, f"hello-{arch}")
        for arch in ("x86_64", "aarch64")
    )
    result = build_image(ImageRequest("multi/app", "v1", layers=layers, created=CREATED), tmp_path / "out")
    metadata = result.metadata
    assert metadata.sbom == "sbom/index.spdx.json"
    names = {i.architecture: i.sbom for _, i in metadata.images}
    assert names == {"x86_64": "sbom/x86_64.spdx.json", "aarch64": "sbom/aarch64.spdx.json"}
    index = json.loads((tmp_path / "out" / "sbom" / "index.spdx.json").read_bytes())
    refs = {r["externalDocumentId"]: r["checksum"]["checksumValue"] for r in index["externalDocumentRefs"]}
    for arch, platform in (("x86_64", "linux-amd64"), ("aarch64", "linux-arm64-v8")):
        data = (tmp_path / "out" / "sbom" / f"{arch}.spdx.json").read_bytes()
        assert refs[f"DocumentRef-{platform}"] == hashlib.sha256(data).hexdigest()
    described = [p for p in index["packages"] if p.get("versionInfo") == result.digest]
    assert len(described) == 1
