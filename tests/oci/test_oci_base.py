"""Building on a base image: its blobs reused byte for byte, diff_ids and history appended, config merged."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any, Dict

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest, build_image
from ocibuild.oci.layout import load_layout
from testutil.oci_layers import CA_BUNDLE, apk_files, layer_input, mirror_apk


def _blob_json(layout: Path, digest: str) -> Dict[str, Any]:
    return json.loads((layout / "blobs/sha256" / digest.split(":")[1]).read_bytes())


@pytest.fixture
def base(tmp_path: Path) -> Path:
    layers = (
        layer_input(
            tmp_path / "base-in",
            apk_files(mirror_apk("x86_64", "alpine-baselayout-data-3.4.3-r2.apk")),
            "x86_64",
            "baselayout",
            "apk_layer //images/static:packages",
        ),
        layer_input(
            tmp_path / "base-in", apk_files(mirror_apk("x86_64", CA_BUNDLE["x86_64"])), "x86_64", "ca"
        ),
    )
    request = ImageRequest(
        repository="images/static",
        tag="latest",
        layers=layers,
        config=ConfigOptions(
            entrypoint=("/bin/sh", "-c"),
            cmd=("echo base",),
            env=(("PATH", "/usr/bin:/bin"), ("LANG", "C"), ("TZ", "UTC")),
            labels=(("a", "1"), ("b", "2")),
            exposed_ports=("80",),
            workdir="/",
        ),
        annotations=(("org.opencontainers.image.title", "static"),),
    )
    build_image(request, tmp_path / "base")
    return tmp_path / "base" / "layout"


def _derived(tmp_path: Path, base: Path, config: ConfigOptions, with_layer: bool = True):
    layers = (
        layer_input(tmp_path / "app-in", {"app/run": b"#!/bin/sh\n"}, None, "app", "oci_layer //app:files"),
    )
    request = ImageRequest(
        repository="images/app",
        tag="v1",
        base=base,
        base_name="images/static:latest",
        layers=layers if with_layer else (),
        config=config,
        annotations=(("org.opencontainers.image.source", "https://example.invalid/repo"),),
        created=1700000000,
    )
    return build_image(request, tmp_path / "app")


def test_base_blobs_are_reused_byte_for_byte(tmp_path: Path, base: Path) -> None:
    result = _derived(tmp_path, base, ConfigOptions())
    base_image = load_layout(base).images[0]
    out = tmp_path / "app/layout"
    manifest = _blob_json(out, result.digest)
    base_layers = [f.descriptor.digest for f in base_image.layers]
    assert [d["digest"] for d in manifest["layers"]][:2] == base_layers
    for digest in base_layers:
        name = digest.split(":")[1]
        assert (out / "blobs/sha256" / name).read_bytes() == (base / "blobs/sha256" / name).read_bytes()


def test_diff_ids_and_history_are_appended(tmp_path: Path, base: Path) -> None:
    result = _derived(tmp_path, base, ConfigOptions())
    base_config = load_layout(base).images[0].config
    config = _blob_json(tmp_path / "app/layout", result.images[0].config.digest)
    new_diff_id = (
        "sha256:" + hashlib.sha256(gzip.decompress((tmp_path / "app-in/app.tar.gz").read_bytes())).hexdigest()
    )
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": base_config["rootfs"]["diff_ids"] + [new_diff_id],
    }
    assert config["history"][:2] == base_config["history"]
    assert [h["created_by"] for h in base_config["history"]] == [
        "apk_layer //images/static:packages",
        "test layer ca",
    ]
    assert config["history"][2] == {"created": "2023-11-14T22:13:20Z", "created_by": "oci_layer //app:files"}
    assert not any(h.get("empty_layer") for h in config["history"])


def test_base_annotations(tmp_path: Path, base: Path) -> None:
    result = _derived(tmp_path, base, ConfigOptions())
    manifest = _blob_json(tmp_path / "app/layout", result.digest)
    base_top = json.loads((base / "index.json").read_text())["manifests"][0]["digest"]
    assert manifest["annotations"] == {
        "org.opencontainers.image.base.digest": base_top,
        "org.opencontainers.image.base.name": "images/static:latest",
        "org.opencontainers.image.source": "https://example.invalid/repo",
    }  # the base's own title is not inherited


def test_config_merge(tmp_path: Path, base: Path) -> None:
    options = ConfigOptions(
        entrypoint=("/app/run",),
        env=(("LANG", "C.UTF-8"), ("APP", "1")),
        labels=(("b", "3"), ("c", "4")),
        exposed_ports=("8080/udp",),
        user="65532:65532",
        stop_signal="SIGINT",
        volumes=("/data",),
    )
    result = _derived(tmp_path, base, options)
    runtime = _blob_json(tmp_path / "app/layout", result.images[0].config.digest)["config"]
    assert runtime == {
        "Entrypoint": ["/app/run"],  # a new entrypoint drops the base's Cmd, as in a Dockerfile
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TZ=UTC", "APP=1"],
        "Labels": {"a": "1", "b": "3", "c": "4"},
        "ExposedPorts": {"80/tcp": {}, "8080/udp": {}},
        "User": "65532:65532",
        "WorkingDir": "/",
        "StopSignal": "SIGINT",
        "Volumes": {"/data": {}},
    }


def test_unset_options_inherit_the_base(tmp_path: Path, base: Path) -> None:
    result = _derived(tmp_path, base, ConfigOptions(cmd=("echo derived",)))
    runtime = _blob_json(tmp_path / "app/layout", result.images[0].config.digest)["config"]
    base_runtime = load_layout(base).images[0].config["config"]
    assert runtime == {**base_runtime, "Cmd": ["echo derived"]}


def test_config_only_image_records_an_empty_layer_step(tmp_path: Path, base: Path) -> None:
    result = _derived(
        tmp_path, base, ConfigOptions(user="65532:65532", workdir="/home/nonroot"), with_layer=False
    )
    config = _blob_json(tmp_path / "app/layout", result.images[0].config.digest)
    base_config = load_layout(base).images[0].config
    assert config["rootfs"] == base_config["rootfs"]
    assert config["history"][-1]["empty_layer"] is True
    assert "user=65532:65532" in config["history"][-1]["created_by"]
    assert len(config["history"]) == len(base_config["history"]) + 1


def test_base_platform_must_exist(tmp_path: Path, base: Path) -> None:
    request = ImageRequest(repository="images/app", tag="v1", base=base, architectures=("aarch64",))
    with pytest.raises(OciBuildError, match=r"no linux/arm64/v8 image") as error:
        build_image(request, tmp_path / "app")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "app").exists()
