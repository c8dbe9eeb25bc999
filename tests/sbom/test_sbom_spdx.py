"""The SPDX documents of the static image, an app on top of it and an index: content, relationships,
determinism (SPDX validity and agreement with Syft and Trivy: test_sbom_tools.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.sbom.facts import IndexFacts
from ocibuild.sbom.spdx import image_sbom, index_sbom, platform_sbom
from testutil.sbom_images import build_app, build_static, image_facts, static_lock


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    work = tmp_path_factory.mktemp("images")
    build_static(work)
    build_app(work, work / "static" / "layout")
    static = image_facts("images/static", "latest", work / "static" / "layout")
    app = image_facts(
        "images/app", "v1", work / "app" / "layout", ("images/static:latest", work / "static" / "layout")
    )
    return static, app


def _doc(data: bytes) -> Dict[str, Any]:
    return json.loads(data)


def _by_name(doc: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {p["name"]: p for p in doc["packages"]}


def _relations(doc: Dict[str, Any], kind: str) -> List[tuple]:
    names = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    names.update({f["SPDXID"]: f["fileName"] for f in doc.get("files", [])})
    names["SPDXRef-DOCUMENT"] = "DOCUMENT"
    return sorted(
        (names[r["spdxElementId"]], names[r["relatedSpdxElement"]])
        for r in doc["relationships"]
        if r["relationshipType"] == kind
    )


def test_static_image_document(images) -> None:
    static, _ = images
    doc = _doc(image_sbom(static))
    hex_digest = static.manifest_digest.split(":")[1]
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"] == {"created": "2023-11-14T22:13:20Z", "creators": ["Tool: ocibuild"]}
    assert doc["documentNamespace"].endswith(f"/images/static/latest/{hex_digest}")
    packages = _by_name(doc)
    image = packages["images/static:latest"]
    assert (image["primaryPackagePurpose"], image["versionInfo"]) == ("CONTAINER", static.manifest_digest)
    assert _relations(doc, "DESCRIBES") == [("DOCUMENT", "images/static:latest")]
    assert _relations(doc, "CONTAINS") == sorted(
        [("images/static:latest", "images/static layer 0"), ("images/static:latest", "alpine")]
        + [("images/static layer 0", p.name) for p in static_lock().packages]
    )
    assert _relations(doc, "DEPENDS_ON") == [("alpine-release", "alpine-keys")]
    os_package = packages["alpine"]
    assert (os_package["primaryPackagePurpose"], os_package["versionInfo"]) == ("OPERATING-SYSTEM", "3.19.1")


def test_apk_package_fields(images) -> None:
    static, _ = images
    packages = _by_name(_doc(image_sbom(static)))
    lock = {p.name: p for p in static_lock().packages}
    for name, locked in lock.items():
        pkg = packages[name]
        assert pkg["versionInfo"] == locked.version
        assert pkg["checksums"] == [{"algorithm": "SHA256", "checksumValue": locked.sha256}]
        assert pkg["downloadLocation"] == locked.url
        assert pkg["supplier"] == pkg["originator"] == "Person: Natanael Copa (ncopa@alpinelinux.org)"
        assert [a["comment"].rsplit(" ", 1)[1] for a in pkg["annotations"]] == [locked.checksum]
        assert pkg["licenseConcluded"] == "NOASSERTION"
    assert packages["alpine-keys"]["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:apk/alpine/alpine-keys@2.4-r1?arch=x86_64&distro=alpine-3.19.1",
        }
    ]
    # Syft's form: the origin as `upstream` when it is another name (Grype matches advisories on it)
    assert packages["alpine-release"]["externalRefs"][0]["referenceLocator"] == (
        "pkg:apk/alpine/alpine-release@3.19.1-r0?arch=x86_64&distro=alpine-3.19.1&upstream=alpine-base"
    )
    assert packages["ca-certificates-bundle"]["licenseDeclared"] == "MPL-2.0 AND MIT"
    assert packages["tzdata"]["licenseDeclared"] == "LicenseRef-Public-Domain"
    assert packages["tzdata"]["licenseComments"] == "apk L: Public-Domain"


def test_app_image_descends_from_the_base_and_keeps_its_packages(images) -> None:
    static, app = images
    doc = _doc(image_sbom(app))
    assert _relations(doc, "DESCENDANT_OF") == [("images/app:v1", "images/static:latest")]
    base = _by_name(doc)["images/static:latest"]
    assert base["versionInfo"] == static.manifest_digest
    contains = _relations(doc, "CONTAINS")
    for p in static_lock().packages:
        assert ("images/app layer 0", p.name) in contains
    assert ("images/app layer 1", "./app/run.sh") in contains
    files = {f["fileName"]: f for f in doc["files"]}
    assert {c["algorithm"] for c in files["./app/run.sh"]["checksums"]} == {"SHA1", "SHA256"}
    app_layer = _by_name(doc)["images/app layer 1"]
    assert app_layer["filesAnalyzed"] is True and app_layer["sourceInfo"] == "oci_layer //app:files"


def test_two_builds_give_identical_bytes(tmp_path: Path, images) -> None:
    static, app = images
    build_static(tmp_path)
    build_app(tmp_path, tmp_path / "static" / "layout")
    again_static = image_facts("images/static", "latest", tmp_path / "static" / "layout")
    again_app = image_facts(
        "images/app",
        "v1",
        tmp_path / "app" / "layout",
        ("images/static:latest", tmp_path / "static" / "layout"),
    )
    assert image_sbom(again_static) == image_sbom(static)
    assert image_sbom(again_app) == image_sbom(app)


def test_index_document_links_each_platform_document(images) -> None:
    static, _ = images
    arm = dataclasses.replace(static, platform="linux/arm64", manifest_digest="sha256:" + "a" * 64)
    platforms = tuple(platform_sbom(i, image_sbom(i)) for i in (static, arm))
    index = IndexFacts("images/static", "latest", "sha256:" + "b" * 64, static.created, platforms)
    doc = _doc(index_sbom(index))
    assert _relations(doc, "DESCRIBES") == [("DOCUMENT", "images/static:latest")]
    assert len(_relations(doc, "CONTAINS")) == 2
    refs = {r["externalDocumentId"]: r for r in doc["externalDocumentRefs"]}
    assert sorted(refs) == ["DocumentRef-linux-amd64", "DocumentRef-linux-arm64"]
    assert refs["DocumentRef-linux-amd64"]["spdxDocument"] == platforms[0].document_namespace
    assert refs["DocumentRef-linux-amd64"]["checksum"]["checksumValue"] == platforms[0].sha256
    assert index_sbom(index) == index_sbom(dataclasses.replace(index, platforms=platforms[::-1]))


def test_a_malformed_digest_is_refused(images) -> None:
    static, _ = images
    with pytest.raises(OciBuildError, match="'sha256:abc' is not a sha256 digest"):
        image_sbom(dataclasses.replace(static, manifest_digest="sha256:abc"))
