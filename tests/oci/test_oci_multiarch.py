"""Several architectures give an image index: one manifest per platform, sorted, each over its base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.oci.image import ImageRequest, build_image
from ocibuild.oci.layout import load_layout
from ocibuild.oci.platforms import ALPINE_PLATFORMS, Platform, alpine_arch_for_platform
from testutil.oci_layers import CA_BUNDLE, apk_files, layer_input, mirror_apk


def _blob_json(layout: Path, digest: str) -> Dict[str, Any]:
    return json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_bytes())


def _layers(folder: Path, archs: List[str]):
    # Request order as the plugin writes it: per-architecture layers, then an arch-independent one.
    layers = [layer_input(folder, apk_files(mirror_apk(a, CA_BUNDLE[a])), a, f"ca-{a}") for a in archs]
    layers.append(layer_input(folder, {"app/config.txt": b"all\n"}, None, "common"))
    return tuple(layers)


@pytest.fixture
def multi(tmp_path: Path):
    request = ImageRequest(
        repository="images/multi",
        tag="latest",
        layers=_layers(tmp_path / "in", ["x86_64", "aarch64"]),
        annotations=(("org.opencontainers.image.title", "multi"),),
    )
    return build_image(request, tmp_path / "multi"), tmp_path / "multi", request


def test_index_lists_one_manifest_per_platform_sorted(multi) -> None:
    result, out, _ = multi
    (entry,) = json.loads((out / "layout/index.json").read_text())["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    assert entry["digest"] == result.digest
    index = _blob_json(out / "layout", result.digest)
    assert [m["platform"] for m in index["manifests"]] == [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]
    assert index["annotations"] == {"org.opencontainers.image.title": "multi"}


def test_each_platform_gets_its_own_layers_and_config(multi) -> None:
    result, out, request = multi
    by_name = {layer.blob.name: layer for layer in request.layers}
    for image, arch in zip(result.images, ["x86_64", "aarch64"]):
        manifest = _blob_json(out / "layout", image.manifest.digest)
        config = _blob_json(out / "layout", image.config.digest)
        expected = [by_name[f"ca-{arch}.tar.gz"], by_name["common.tar.gz"]]
        assert [d["digest"] for d in manifest["layers"]] == [
            layer.facts.descriptor.digest for layer in expected
        ]
        assert config["rootfs"]["diff_ids"] == [layer.facts.diff_id for layer in expected]
        platform = ALPINE_PLATFORMS[arch]
        assert (config["os"], config["architecture"], config.get("variant", "")) == (
            platform.os,
            platform.architecture,
            platform.variant,
        )


def test_one_docker_archive_per_platform(multi) -> None:
    result, out, _ = multi
    assert sorted(p.name for p in out.glob("*.docker.tar")) == [
        "image-aarch64.docker.tar",
        "image-x86_64.docker.tar",
    ]
    metadata = json.loads((out / "image.json").read_text())
    assert metadata["digest"] == result.digest
    assert metadata["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert {p: i["manifest"] for p, i in metadata["images"].items()} == {
        str(i.platform): i.manifest.digest for i in result.images
    }


def test_derived_image_uses_each_platforms_base_manifest(tmp_path: Path, multi) -> None:
    _, out, _ = multi
    request = ImageRequest(
        repository="images/derived", tag="latest", base=out / "layout", base_name="images/multi:latest"
    )
    result = build_image(request, tmp_path / "derived")
    base = load_layout(out / "layout")
    assert [i.platform for i in result.images] == [i.platform for i in base.images]  # platforms from the base
    for image, base_image in zip(result.images, base.images):
        manifest = _blob_json(tmp_path / "derived/layout", image.manifest.digest)
        assert (
            manifest["annotations"]["org.opencontainers.image.base.digest"]
            == base_image.manifest_descriptor.digest
        )
        assert manifest["layers"] == base_image.manifest["layers"]


def test_a_subset_of_the_base_platforms_gives_a_single_manifest(tmp_path: Path, multi) -> None:
    _, out, _ = multi
    layer = layer_input(tmp_path / "in2", {"arm-only": b"1"}, "aarch64", "arm")
    result = build_image(
        ImageRequest(repository="images/arm", tag="t", base=out / "layout", layers=(layer,)), tmp_path / "arm"
    )
    (entry,) = json.loads((tmp_path / "arm/layout/index.json").read_text())["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["platform"] == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert result.images[0].docker_archive == "image.docker.tar"


def test_missing_base_platform_is_named(tmp_path: Path) -> None:
    single = build_image(
        ImageRequest(repository="images/x86", tag="latest", layers=_layers(tmp_path / "in", ["x86_64"])),
        tmp_path / "x86",
    )
    assert single.images[0].platform == Platform("linux", "amd64")
    layers = (
        layer_input(tmp_path / "in", {"a": b"1"}, "x86_64", "a"),
        layer_input(tmp_path / "in", {"a": b"2"}, "aarch64", "b"),
    )
    with pytest.raises(
        OciBuildError, match=r"x86/layout: the base image has no linux/arm64/v8 image \(it has linux/amd64\)"
    ):
        build_image(
            ImageRequest(repository="images/y", tag="latest", base=tmp_path / "x86/layout", layers=layers),
            tmp_path / "y",
        )


def test_layers_missing_for_an_architecture_fail(tmp_path: Path) -> None:
    layers = _layers(tmp_path / "in", ["x86_64", "aarch64"]) + (
        layer_input(tmp_path / "in", {"b": b""}, "x86_64", "extra"),
    )
    with pytest.raises(OciBuildError, match=r"different numbers of layers \(aarch64: 2, x86_64: 3\)"):
        build_image(ImageRequest(repository="images/z", tag="latest", layers=layers), tmp_path / "z")


def test_no_architecture_at_all_fails(tmp_path: Path) -> None:
    layers = (layer_input(tmp_path / "in", {"a": b"1"}, None, "a"),)
    with pytest.raises(OciBuildError, match="set `architectures`"):
        build_image(ImageRequest(repository="images/z", tag="latest", layers=layers), tmp_path / "z")


def test_alpine_names_map_to_oci_platforms() -> None:
    assert str(ALPINE_PLATFORMS["armv7"]) == "linux/arm/v7"
    assert str(ALPINE_PLATFORMS["armhf"]) == "linux/arm/v6"
    assert str(ALPINE_PLATFORMS["x86"]) == "linux/386"
    assert alpine_arch_for_platform(Platform("linux", "arm64")) == "aarch64"  # v8 implied
    assert len({str(p) for p in ALPINE_PLATFORMS.values()}) == len(ALPINE_PLATFORMS)
