"""Our SBOMs against real tools (PyPI, installed on first use by testutil.scanners): spdx-tools
validates every document; Syft and Trivy, scanning the same OCI layouts, find the same packages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Optional, Set, Tuple

import pytest
from ocibuild.sbom.facts import ApkPackageFacts, IndexFacts, LayerFacts
from ocibuild.sbom.spdx import image_sbom, index_sbom, platform_sbom
from testutil import scanners
from testutil.sbom_images import alpine_index_licenses, build_app, build_static, image_facts, locked_versions


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("images")
    build_static(work)
    build_app(work, work / "static" / "layout")
    static = image_facts("images/static", "latest", work / "static" / "layout")
    app = image_facts(
        "images/app", "v1", work / "app" / "layout", ("images/static:latest", work / "static" / "layout")
    )
    docs = {}
    for name, facts in (("static", static), ("app", app)):
        path = work / f"{name}.spdx.json"
        path.write_bytes(image_sbom(facts))
        docs[name] = path
    return work, static, app, docs


def _assert_valid(path: Path) -> None:
    result = scanners.spdx_validate(path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr[-3000:]


def _our_packages(path: Path) -> Set[Tuple[str, str]]:
    doc = json.loads(path.read_text())
    return {
        (p["name"], p["versionInfo"])
        for p in doc["packages"]
        if any(r["referenceLocator"].startswith("pkg:apk/") for r in p.get("externalRefs", []))
    }


def _our_purls(path: Path) -> Set[str]:
    doc = json.loads(path.read_text())
    return {
        r["referenceLocator"]
        for p in doc["packages"]
        for r in p.get("externalRefs", [])
        if r["referenceLocator"].startswith("pkg:apk/")
    }


def test_spdx_tools_validates_image_and_index_documents(built) -> None:
    work, static, _, docs = built
    for path in docs.values():
        _assert_valid(path)
    arm = dataclasses.replace(static, platform="linux/arm64", manifest_digest="sha256:" + "a" * 64)
    platforms = tuple(platform_sbom(i, image_sbom(i)) for i in (static, arm))
    index = work / "index.spdx.json"
    index.write_bytes(
        index_sbom(IndexFacts("images/static", "latest", "sha256:" + "b" * 64, static.created, platforms))
    )
    _assert_valid(index)


def test_spdx_tools_accepts_every_alpine_license(built, tmp_path: Path) -> None:
    """Every L: of the Alpine 3.19 index, as a package's license: the converted expressions validate."""
    _, static, _, _ = built
    packages = tuple(
        ApkPackageFacts(name=f"pkg{i}", version="1.0-r0", architecture="x86_64", license=value)
        for i, value in enumerate(alpine_index_licenses())
    )
    facts = dataclasses.replace(
        static, layers=(LayerFacts("sha256:" + "c" * 64, "sha256:" + "d" * 64, "apk", packages),)
    )
    path = tmp_path / "licenses.spdx.json"
    path.write_bytes(image_sbom(facts))
    _assert_valid(path)


def test_spdx_tools_reports_a_broken_document(built, tmp_path: Path) -> None:
    _, _, _, docs = built
    doc: Dict[str, Any] = json.loads(docs["static"].read_text())
    doc["packages"][-1]["licenseDeclared"] = "Not-A-License AND MIT"
    broken = tmp_path / "broken.spdx.json"
    broken.write_text(json.dumps(doc))
    result = scanners.spdx_validate(broken)
    assert result.returncode != 0 and "Not-A-License" in result.stderr


@pytest.mark.parametrize("image", ["static", "app"])
def test_syft_finds_our_packages(built, image: str) -> None:
    work, _, _, docs = built
    syft = scanners.syft_scan(work / image / "layout", work / f"syft-{image}")
    assert (syft["distro"]["id"], syft["distro"]["versionID"]) == ("alpine", "3.19.1")
    theirs = {(a["name"], a["version"]) for a in syft["artifacts"] if a["type"] == "apk"}
    assert theirs == _our_packages(docs[image]) == set(locked_versions().items())
    assert {a["purl"] for a in syft["artifacts"] if a["type"] == "apk"} == _our_purls(docs[image])


@pytest.mark.parametrize("image", ["static", "app"])
def test_trivy_finds_our_packages(built, image: str) -> None:
    work, _, _, docs = built
    trivy = scanners.trivy_spdx(work / image / "layout", work / f"trivy-{image}")
    by_purpose: Dict[Optional[str], Set[Tuple[str, Optional[str]]]] = {}
    for p in trivy["packages"]:
        by_purpose.setdefault(p.get("primaryPackagePurpose"), set()).add((p["name"], p.get("versionInfo")))
    assert by_purpose["OPERATING-SYSTEM"] == {("alpine", "3.19.1")}
    assert by_purpose["LIBRARY"] == _our_packages(docs[image]) == set(locked_versions().items())
