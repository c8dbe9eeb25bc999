"""End to end: `./pants package` writes each image's SBOM, and real scanners agree with it.

A fresh checkout packages images/static and the C hello built FROM it. Each output folder has
`sbom/x86_64.spdx.json` (the command prints its path), which spdx-tools validates; Syft and Trivy,
scanning the `layout/` beside it, find exactly its APK packages (the hello's base packages too,
in all three); every package carries the lock's sha256 and URL (the hello's through the base's own
SBOM); a second checkout with its own store builds byte-identical SBOMs and the same image digests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, Set, Tuple

import pytest
from ocibuild.apk.lockfile import load_lockfile
from testutil import scanners
from testutil.checkout import make_checkout, run_pants

IMAGES = {
    "images/static:static": "dist/images.static/static",
    "examples/hello-c:hello-c": "dist/examples.hello-c/hello-c",
}
SBOM = "sbom/x86_64.spdx.json"


def _output(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-6000:]


def _package(checkout: Path, store: Path) -> subprocess.CompletedProcess:
    result = run_pants(checkout, "package", *IMAGES, store=store)
    assert result.returncode == 0, _output(result)
    return result


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path, str]:
    """Two checkouts, each packaged with its own local store (nothing shared but the sources)."""
    first = make_checkout(tmp_path_factory.mktemp("sbom-a"))
    second = make_checkout(tmp_path_factory.mktemp("sbom-b"), name="elsewhere")
    result = _package(first, first.parent / "store")
    _package(second, second.parent / "store")
    return first, second, result.stdout + result.stderr


def _apk_packages(doc: Dict[str, Any]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    return {
        (p["name"], p["versionInfo"]): p
        for p in doc["packages"]
        if any(r["referenceLocator"].startswith("pkg:apk/") for r in p.get("externalRefs", []))
    }


def _locked(checkout: Path) -> Dict[Tuple[str, str], Any]:
    path = checkout / "images" / "static" / "apko.lock.json"
    return {(p.name, p.version): p for p in load_lockfile(path.read_text(), str(path)).packages}


def test_package_writes_and_prints_each_sbom(builds) -> None:
    first, _, log = builds
    for target, folder in IMAGES.items():
        assert (first / folder / SBOM).is_file(), target
        assert f"sbom: {folder}/{SBOM}" in log, log[-3000:]
        image = json.loads((first / folder / "image.json").read_text())
        (platform,) = [meta for _, meta in image["images"].items()]
        assert platform["sbom"] == SBOM and image["sbom"] is None


def test_spdx_tools_validate_the_built_sboms(builds) -> None:
    first, _, _ = builds
    for folder in IMAGES.values():
        result = scanners.spdx_validate(first / folder / SBOM)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr[-3000:]


def test_sboms_carry_the_lock_and_the_base(builds) -> None:
    first, _, _ = builds
    locked = _locked(first)
    static = json.loads((first / IMAGES["images/static:static"] / SBOM).read_text())
    hello = json.loads((first / IMAGES["examples/hello-c:hello-c"] / SBOM).read_text())
    static_image = json.loads((first / IMAGES["images/static:static"] / "image.json").read_text())
    for doc in (static, hello):
        packages = _apk_packages(doc)
        assert set(packages) == set(locked)
        for key, pkg in packages.items():
            assert pkg["checksums"] == [{"algorithm": "SHA256", "checksumValue": locked[key].sha256}], key
            assert pkg["downloadLocation"] == locked[key].url
    bases = [p for p in hello["packages"] if p["name"].startswith("images/static")]
    (base,) = bases
    assert base["versionInfo"] == static_image["digest"]
    descendant = [r for r in hello["relationships"] if r["relationshipType"] == "DESCENDANT_OF"]
    assert [r["relatedSpdxElement"] for r in descendant] == [base["SPDXID"]]


@pytest.mark.parametrize("target", list(IMAGES))
def test_syft_and_trivy_agree_with_ours(builds, target: str, tmp_path: Path) -> None:
    first, _, _ = builds
    folder = first / IMAGES[target]
    ours: Set[Tuple[str, str]] = set(_apk_packages(json.loads((folder / SBOM).read_text())))
    assert ours == set(_locked(first))  # hello-c's base packages are still there
    syft = scanners.syft_scan(folder / "layout", tmp_path / "syft")
    assert (syft["distro"]["id"], syft["distro"]["versionID"]) == ("alpine", "3.19.1")
    assert {(a["name"], a["version"]) for a in syft["artifacts"] if a["type"] == "apk"} == ours
    trivy = scanners.trivy_spdx(folder / "layout", tmp_path / "trivy")
    libraries = {
        (p["name"], p.get("versionInfo"))
        for p in trivy["packages"]
        if p.get("primaryPackagePurpose") == "LIBRARY"
    }
    assert libraries == ours
    assert ("alpine", "3.19.1") in {
        (p["name"], p.get("versionInfo"))
        for p in trivy["packages"]
        if p.get("primaryPackagePurpose") == "OPERATING-SYSTEM"
    }


def test_two_builds_give_byte_identical_sboms_and_images(builds) -> None:
    first, second, _ = builds
    for folder in IMAGES.values():
        assert (first / folder / SBOM).read_bytes() == (second / folder / SBOM).read_bytes(), folder
        digests = [json.loads((c / folder / "image.json").read_text())["digest"] for c in (first, second)]
        assert digests[0] == digests[1]
