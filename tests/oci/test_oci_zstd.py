"""`compression="zstd"`: the image's own layers re-encoded as zstd in the layout, the base's kept, the
config (and so diff_ids and image ID) the gzip image's, docker-archives uncompressed either way.

Read back with the real tools that consume such images: the `zstd` CLI, skopeo, a real registry.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import zstandard
from ocibuild.common.compression import ZSTD_LEVEL, zstd_compress
from ocibuild.errors import OciBuildError
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest, ImageResult, build_image
from ocibuild.oci.layout import load_layout
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.push import PushTarget, push_layout, read_layout
from ocibuild.sbom.layer_scan import scan_layer
from testutil.oci_layers import CA_BUNDLE, apk_files, layer_input, mirror_apk, tree_bytes
from testutil.registry_images import layout_blob_digests, skopeo_copy_back
from testutil.servers import docker_registry, require_tool
from testutil.tars import member_bytes

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs/sha256" / digest.split(":", 1)[1]).read_bytes()


def _manifest(result: ImageResult, layout: Path) -> Dict[str, Any]:
    return json.loads(_blob(layout, result.images[0].manifest.digest))


def _app_request(root: Path, compression: str, base: Path) -> ImageRequest:
    app = layer_input(root / "in", {"app/run": b"#!/bin/sh\necho hi\n" * 500}, None, "app", "oci_layer //app")
    ca = layer_input(root / "in", apk_files(mirror_apk("x86_64", CA_BUNDLE["x86_64"])), "x86_64", "ca")
    return ImageRequest(
        repository="images/app",
        tag="v1",
        base=base,
        base_name="images/static:latest",
        layers=(ca, app),
        config=ConfigOptions(cmd=("/app/run",)),
        created=1700000000,
        compression=compression,
    )


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Dict[str, Any]:
    root = tmp_path_factory.mktemp("zstd")
    base_layer = layer_input(
        root / "base-in",
        apk_files(mirror_apk("x86_64", "alpine-baselayout-data-3.4.3-r2.apk")),
        "x86_64",
        "baselayout",
    )
    build_image(ImageRequest(repository="images/static", tag="latest", layers=(base_layer,)), root / "base")
    base = root / "base/layout"
    out: Dict[str, Any] = {"root": root, "base": base}
    for compression in ("gzip", "zstd"):
        request = _app_request(root / compression, compression, base)
        out[compression] = (build_image(request, root / compression / "out"), request)
    return out


def test_new_layers_are_zstd_and_the_base_layers_keep_their_encoding(images) -> None:
    result, request = images["zstd"]
    layout = images["root"] / "zstd/out/layout"
    layers = _manifest(result, layout)["layers"]
    assert [layer["mediaType"] for layer in layers] == [GZIP, ZSTD, ZSTD]
    base_digest = load_layout(images["base"]).images[0].layers[0].descriptor.digest
    assert layers[0]["digest"] == base_digest
    for layer in layers[1:]:
        blob = _blob(layout, layer["digest"])
        assert blob[:4] == b"\x28\xb5\x2f\xfd" and len(blob) == layer["size"]
    # The layer builders' gzip blobs are not in the layout: only what the manifests name.
    sources = {"sha256:" + hashlib.sha256(layer.blob.read_bytes()).hexdigest() for layer in request.layers}
    assert not sources & set(layout_blob_digests(layout))


def test_the_config_is_the_gzip_images_so_diff_ids_and_image_id_are_equal(images) -> None:
    gzip_result, _ = images["gzip"]
    zstd_result, _ = images["zstd"]
    assert zstd_result.images[0].config == gzip_result.images[0].config
    assert zstd_result.digest != gzip_result.digest  # the manifest names other layer blobs
    gzip_layers = _manifest(gzip_result, images["root"] / "gzip/out/layout")["layers"]
    zstd_layers = _manifest(zstd_result, images["root"] / "zstd/out/layout")["layers"]
    assert sum(d["size"] for d in zstd_layers[1:]) < sum(d["size"] for d in gzip_layers[1:])
    uncompressed = {i.architecture: i.uncompressed_size for i in gzip_result.images}
    assert {i.architecture: i.uncompressed_size for i in zstd_result.images} == uncompressed


def test_each_zstd_blob_decompresses_to_the_tar_its_diff_id_names(images) -> None:
    result, request = images["zstd"]
    layout = images["root"] / "zstd/out/layout"
    config = json.loads(_blob(layout, result.images[0].config.digest))
    layers = _manifest(result, layout)["layers"]
    for source, descriptor, diff_id in zip(request.layers, layers[1:], config["rootfs"]["diff_ids"][1:]):
        blob = _blob(layout, descriptor["digest"])
        tar = subprocess.run(
            [require_tool("zstd"), "-d", "-c"], input=blob, capture_output=True, check=True, timeout=120
        ).stdout
        assert tar == gzip.decompress(source.blob.read_bytes())
        assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id == source.facts.diff_id
        frame = zstandard.get_frame_parameters(blob)
        assert (frame.content_size, frame.dict_id, frame.has_checksum) == (len(tar), 0, True)
        # One frame: exactly what `zstd -19` (the CLI, with its own libzstd) reads as one frame.
        assert (
            "Frames"
            not in subprocess.run(
                [require_tool("zstd"), "-l", "-"], input=blob, capture_output=True, timeout=60
            ).stderr.decode()
        )


def test_two_builds_write_the_same_bytes(images, tmp_path: Path) -> None:
    _, request = images["zstd"]
    build_image(request, tmp_path / "again")
    assert tree_bytes(tmp_path / "again") == tree_bytes(images["root"] / "zstd/out")


def test_the_encoder_output_does_not_depend_on_read_sizes() -> None:
    data = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() * (i % 7) for i in range(2000))

    class Reads(io.BytesIO):
        def __init__(self, size: int) -> None:
            super().__init__(data)
            self.size = size

        def read(self, n: Optional[int] = -1) -> bytes:
            return super().read(min(n, self.size) if n and n > 0 else self.size)

    outputs = set()
    for size in (len(data), 1 << 20, 65536, 4096, 1000):
        out = io.BytesIO()
        zstd_compress(Reads(size), out, len(data), "test")
        outputs.add(out.getvalue())
    assert len(outputs) == 1
    (frame,) = outputs
    assert frame == zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compress(data)


def _docker_archive(path: Path) -> Dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: member_bytes(tar, m) for m in tar.getmembers() if m.isfile()}


def test_the_docker_archive_is_the_gzip_images_uncompressed_layers_and_all(images) -> None:
    zstd_archive = images["root"] / "zstd/out/image.docker.tar"
    assert zstd_archive.read_bytes() == (images["root"] / "gzip/out/image.docker.tar").read_bytes()
    entries = _docker_archive(zstd_archive)
    (manifest,) = json.loads(entries["manifest.json"])
    diff_ids = json.loads(entries[manifest["Config"]])["rootfs"]["diff_ids"]
    assert ["sha256:" + hashlib.sha256(entries[n]).hexdigest() for n in manifest["Layers"]] == diff_ids
    info = json.loads(
        subprocess.run(
            [require_tool("skopeo"), "inspect", "--config", f"docker-archive:{zstd_archive}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert info["rootfs"]["diff_ids"] == diff_ids


def test_skopeo_reads_the_zstd_layout(images, tmp_path: Path) -> None:
    result, _ = images["zstd"]
    layout = images["root"] / "zstd/out/layout"
    skopeo = require_tool("skopeo")
    info = json.loads(
        subprocess.run(
            [skopeo, "inspect", f"oci:{layout}:v1"], capture_output=True, text=True, check=True, timeout=120
        ).stdout
    )
    assert info["Digest"] == result.digest
    # skopeo (containers/image) decodes the zstd layers to gzip them again: load_layout checks that
    # each decompresses to the tar the (unchanged) config's diff_ids name.
    subprocess.run(
        [
            skopeo,
            "copy",
            "--dest-compress",
            "--dest-compress-format=gzip",
            f"oci:{layout}:v1",
            f"oci:{tmp_path / 'regzipped'}:v1",
        ],
        capture_output=True,
        check=True,
        timeout=300,
    )
    regzipped = load_layout(tmp_path / "regzipped").images[0]
    assert regzipped.config_descriptor.digest == result.images[0].config.digest
    assert [f.descriptor.media_type for f in regzipped.layers] == [GZIP, GZIP, GZIP]


def test_an_image_on_a_zstd_base_keeps_its_layers_and_decompresses_them_for_docker(
    images, tmp_path: Path
) -> None:
    zstd_result, _ = images["zstd"]
    zstd_layout = images["root"] / "zstd/out/layout"
    top = layer_input(tmp_path / "in", {"etc/top": b"top\n"}, None, "top")
    result = build_image(
        ImageRequest(repository="images/top", tag="v1", base=zstd_layout, layers=(top,)), tmp_path / "out"
    )
    layers = _manifest(result, tmp_path / "out/layout")["layers"]
    assert layers[:3] == _manifest(zstd_result, zstd_layout)["layers"]
    assert [layer["mediaType"] for layer in layers] == [GZIP, ZSTD, ZSTD, GZIP]
    entries = _docker_archive(tmp_path / "out/image.docker.tar")
    (manifest,) = json.loads(entries["manifest.json"])
    diff_ids = json.loads(entries[manifest["Config"]])["rootfs"]["diff_ids"]
    assert ["sha256:" + hashlib.sha256(entries[n]).hexdigest() for n in manifest["Layers"]] == diff_ids
    # The SBOM reads the zstd layers as it reads gzip ones.
    for source, zstd_layer in zip(images["gzip"][1].layers, layers[1:3]):
        assert scan_layer(tmp_path / "out/layout/blobs/sha256" / zstd_layer["digest"][7:]) == scan_layer(
            source.blob
        )


def _zstd_blobs(layout: Path, result: ImageResult) -> List[Path]:
    layers = _manifest(result, layout)["layers"]
    return [layout / "blobs/sha256" / d["digest"][7:] for d in layers if d["mediaType"] == ZSTD]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_zstd_layer_fails_with_one_line_naming_it(images, tmp_path: Path, damage: str) -> None:
    result, _ = images["zstd"]
    copy = tmp_path / "layout"
    for name, data in tree_bytes(images["root"] / "zstd/out/layout").items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    blob = _zstd_blobs(copy, result)[0]
    data = bytearray(blob.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-20:]
    blob.write_bytes(bytes(data))
    with pytest.raises(OciBuildError) as error:
        load_layout(copy)
    message = str(error.value)
    assert message.startswith(f"{blob}: ") and "\n" not in message
    # A changed blob no longer has its digest: that is what is reported first.
    assert "blob does not match its descriptor" in message


def test_a_zstd_layer_that_does_not_decompress_is_reported_as_such(tmp_path: Path) -> None:
    from ocibuild.oci.layers import inspect_layer

    tar = b"x" * 10000
    frame = zstandard.ZstdCompressor(level=3).compress(tar)
    (tmp_path / "truncated").write_bytes(frame[:-6])
    (tmp_path / "corrupt").write_bytes(frame[:8] + b"\x00" * (len(frame) - 8))
    for name, problem in (
        ("truncated", "the zstd stream is truncated"),
        ("corrupt", "the zstd stream is corrupt"),
    ):
        with pytest.raises(OciBuildError) as error:
            inspect_layer(tmp_path / name, ZSTD)
        assert str(error.value).startswith(f"{tmp_path / name}: {problem}") and "\n" not in str(error.value)


def test_an_unknown_compression_is_one_line(images, tmp_path: Path) -> None:
    _, request = images["zstd"]
    with pytest.raises(OciBuildError, match=r"^compression 'xz' is not supported; use one of gzip, zstd$"):
        build_image(ImageRequest(repository="a", tag="b", layers=request.layers, compression="xz"), tmp_path)


def test_a_zstd_image_pushes_and_reads_back_byte_for_byte(images, tmp_path: Path) -> None:
    result, _ = images["zstd"]
    layout = images["root"] / "zstd/out/layout"
    (tmp_path / "registry").mkdir()
    with docker_registry(tmp_path / "registry") as registry:
        client = RegistryClient(registry.address, insecure=True, timeout=10)
        content = read_layout(layout)
        push_layout(content, [PushTarget(client, "images/app")], ["v1"], log=lambda line: None)
        assert content.digest == result.digest
        back = tmp_path / "back"
        assert skopeo_copy_back(f"{registry.address}/images/app:v1", back) == result.digest
        assert layout_blob_digests(back) == layout_blob_digests(layout)


def test_a_multi_platform_zstd_image_encodes_a_shared_layer_once(tmp_path: Path) -> None:
    shared = layer_input(tmp_path / "in", {"etc/motd": b"hello\n" * 100}, None, "shared")
    per_arch = tuple(
        layer_input(tmp_path / "in", apk_files(mirror_apk(a, CA_BUNDLE[a])), a, f"ca-{a}")
        for a in ("x86_64", "aarch64")
    )
    results = {
        c: build_image(
            ImageRequest(repository="images/multi", tag="v1", layers=(*per_arch, shared), compression=c),
            tmp_path / c,
        )
        for c in ("gzip", "zstd")
    }
    layout = tmp_path / "zstd/layout"
    manifests = [json.loads(_blob(layout, i.manifest.digest)) for i in results["zstd"].images]
    assert [[d["mediaType"] for d in m["layers"]] for m in manifests] == [[ZSTD, ZSTD]] * 2
    assert manifests[0]["layers"][1] == manifests[1]["layers"][1]  # one blob for the shared layer
    assert [i.config for i in results["zstd"].images] == [i.config for i in results["gzip"].images]
    # Two configs, two manifests, the index, two arch layers and the shared one.
    assert len(layout_blob_digests(layout)) == 8
