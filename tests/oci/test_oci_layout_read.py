"""Reading layouts back: tag lookup, and every blob checked against its digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.oci.image import ImageRequest, build_image
from ocibuild.oci.layout import load_layout
from testutil.oci_layers import CA_BUNDLE, apk_files, layer_input, mirror_apk
from testutil.tars import member_bytes


@pytest.fixture
def image(tmp_path: Path):
    layers = (
        layer_input(tmp_path / "in", apk_files(mirror_apk("x86_64", CA_BUNDLE["x86_64"])), "x86_64", "ca"),
    )
    result = build_image(ImageRequest(repository="images/ca", tag="v2", layers=layers), tmp_path / "out")
    return result, tmp_path / "out/layout", layers[0]


def test_single_arch_index_points_at_the_manifest_with_the_tag(image) -> None:
    result, layout, _ = image
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    (entry,) = index["manifests"]
    assert entry == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": result.digest,
        "size": (layout / "blobs/sha256" / result.digest[7:]).stat().st_size,
        "platform": {"os": "linux", "architecture": "amd64"},
        "annotations": {"org.opencontainers.image.ref.name": "v2"},
    }


def test_load_layout_by_tag(image) -> None:
    result, layout, layer = image
    loaded = load_layout(layout, tag="v2")
    assert loaded.top.digest == result.digest
    (img,) = loaded.images
    assert [f.diff_id for f in img.layers] == [layer.facts.diff_id]
    assert img.layers[0].uncompressed_size == layer.facts.uncompressed_size
    with pytest.raises(OciBuildError, match="expected exactly one image tagged 'nope', found 0"):
        load_layout(layout, tag="nope")


def test_oci_archive_names_the_full_reference(image, tmp_path: Path) -> None:
    import tarfile

    with tarfile.open(tmp_path / "out/image.oci.tar") as tar:
        index = json.loads(member_bytes(tar, "index.json"))
    (entry,) = index["manifests"]
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "images/ca:v2"}


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["layer", "config", "manifest"])
def test_tampered_blob_is_named(image, which: str) -> None:
    result, layout, layer = image
    digest = {
        "layer": layer.facts.descriptor.digest,
        "config": result.images[0].config.digest,
        "manifest": result.digest,
    }[which]
    blob = layout / "blobs/sha256" / digest[7:]
    _tamper(blob)
    with pytest.raises(OciBuildError) as error:
        load_layout(layout)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{blob}: ") and "does not match" in message and digest in message


def test_missing_blob_is_named(image) -> None:
    result, layout, _ = image
    (layout / "blobs/sha256" / result.images[0].config.digest[7:]).unlink()
    with pytest.raises(
        OciBuildError, match=r"missing config blob sha256:[0-9a-f]{64}; the layout is incomplete"
    ):
        load_layout(layout)


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(
        OciBuildError, match=r"oci-layout: missing oci-layout file; is this an OCI image layout\?"
    ):
        load_layout(tmp_path)


def test_tampered_base_stops_a_derived_build(image, tmp_path: Path) -> None:
    _, layout, layer = image
    _tamper(layout / "blobs/sha256" / layer.facts.descriptor.digest[7:])
    with pytest.raises(OciBuildError, match="does not match"):
        build_image(ImageRequest(repository="images/d", tag="latest", base=layout), tmp_path / "d")
    assert not (tmp_path / "d").exists()


def _rewrite_index(layout: Path, edit) -> None:
    index = json.loads((layout / "index.json").read_text())
    edit(index["manifests"][0])
    (layout / "index.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda e: e.update(digest="sha256:abc"),
            "`manifests[0].digest` 'sha256:abc' is not a sha256 digest",
        ),
        (lambda e: e.update(size=-1), "`manifests[0].size` -1 is negative"),
        (lambda e: e.pop("mediaType"), "`manifests[0].mediaType` is required (a string)"),
        (lambda e: e.update(annotations=[1]), "`manifests[0].annotations` has 1"),
        (lambda e: e["platform"].update(os=1), "`manifests[0].platform.os` must be a string, got 1"),
    ],
    ids=["digest", "size", "media-type", "annotations", "platform"],
)
def test_malformed_index_entry_is_named_by_file_and_key(image, edit, message: str) -> None:
    _, layout, _ = image
    _rewrite_index(layout, edit)
    with pytest.raises(OciBuildError) as error:
        load_layout(layout)
    assert str(error.value).startswith(f"{layout / 'index.json'}: {message}")
    assert "\n" not in str(error.value)


def test_other_keys_of_descriptors_and_platforms_are_allowed(image) -> None:
    result, layout, _ = image
    _rewrite_index(layout, lambda e: e.update(urls=[], platform={**e["platform"], "os.features": []}))
    assert load_layout(layout).top.digest == result.digest


def test_wrong_layout_version_is_named(image) -> None:
    _, layout, _ = image
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(
        OciBuildError, match=r"oci-layout: `imageLayoutVersion` is '2.0.0': only OCI image layout 1"
    ):
        load_layout(layout)
