"""Real tools accept what we write: skopeo (inspect, copy to docker-archive) and umoci (unpack).

Expectations come from the layer tars themselves, not from recorded digests.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List

import pytest
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest, build_image
from testutil.oci_layers import CA_BUNDLE, apk_files, layer_input, mirror_apk
from testutil.servers import require_tool
from testutil.tars import member_bytes


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{argv}: {result.stderr[-3000:]}"
    return result.stdout


def _expected_files(blobs: List[Path]) -> Dict[str, bytes]:
    files: Dict[str, bytes] = {}
    for blob in blobs:
        with tarfile.open(blob, "r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    files[member.name] = member_bytes(tar, member)
    return files


def _unpacked_files(rootfs: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(rootfs)): p.read_bytes() for p in rootfs.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("tools")
    base_layers = (
        layer_input(
            root / "in",
            apk_files(mirror_apk("x86_64", "alpine-baselayout-data-3.4.3-r2.apk")),
            "x86_64",
            "bl",
        ),
        layer_input(root / "in", apk_files(mirror_apk("x86_64", CA_BUNDLE["x86_64"])), "x86_64", "ca"),
    )
    base = build_image(
        ImageRequest(
            repository="images/static",
            tag="latest",
            layers=base_layers,
            config=ConfigOptions(env=(("PATH", "/bin"),)),
            annotations=(("org.opencontainers.image.title", "static"),),
        ),
        root / "static",
    )
    app_layer = layer_input(root / "in", {"etc/hostname": b"overridden\n", "app/run": b"run\n"}, None, "app")
    app = build_image(
        ImageRequest(
            repository="images/app",
            tag="v1",
            base=root / "static/layout",
            base_name="images/static:latest",
            layers=(app_layer,),
            config=ConfigOptions(user="65532", cmd=("/app/run",)),
        ),
        root / "app",
    )
    multi_layers = tuple(
        layer_input(root / "in", apk_files(mirror_apk(a, CA_BUNDLE[a])), a, f"ca-{a}")
        for a in ("x86_64", "aarch64")
    )
    multi = build_image(
        ImageRequest(repository="images/multi", tag="latest", layers=multi_layers), root / "multi"
    )
    return {
        "root": root,
        "base": (base, [layer.blob for layer in base_layers]),
        "app": (app, [layer.blob for layer in base_layers] + [app_layer.blob]),
        "multi": (multi, {layer.architecture: layer.blob for layer in multi_layers}),
    }


def test_skopeo_inspects_the_layout_by_tag(images) -> None:
    app, _ = images["app"]
    out = images["root"] / "app"
    info = json.loads(_run(require_tool("skopeo"), "inspect", f"oci:{out}/layout:v1"))
    assert info["Digest"] == app.digest
    assert info["Architecture"] == "amd64"
    config = json.loads(_run(require_tool("skopeo"), "inspect", "--config", f"oci:{out}/layout:v1"))
    assert config["config"]["User"] == "65532"
    assert config["config"]["Env"] == ["PATH=/bin"]
    archive = json.loads(_run(require_tool("skopeo"), "inspect", f"oci-archive:{out}/image.oci.tar"))
    assert archive["Digest"] == app.digest


def test_skopeo_copies_to_a_docker_archive(images) -> None:
    root = images["root"]
    target = root / "copied.docker.tar"
    _run(
        require_tool("skopeo"), "copy", f"oci:{root}/app/layout:v1", f"docker-archive:{target}:images/app:v1"
    )
    config = json.loads(_run(require_tool("skopeo"), "inspect", "--config", f"docker-archive:{target}"))
    ours = json.loads(_run(require_tool("skopeo"), "inspect", "--config", f"oci:{root}/app/layout:v1"))
    assert config["rootfs"] == ours["rootfs"]


def test_our_docker_archive_matches_the_image(images) -> None:
    app, blobs = images["app"]
    path = images["root"] / "app/image.docker.tar"
    with tarfile.open(path) as tar:
        (manifest,) = json.loads(member_bytes(tar, "manifest.json"))
        config_bytes = member_bytes(tar, manifest["Config"])
        layer_digests = [
            "sha256:" + hashlib.sha256(member_bytes(tar, n)).hexdigest() for n in manifest["Layers"]
        ]
    assert manifest["RepoTags"] == ["images/app:v1"]
    assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == app.images[0].config.digest
    assert layer_digests == json.loads(config_bytes)["rootfs"]["diff_ids"]
    assert len(layer_digests) == len(blobs)
    info = json.loads(_run(require_tool("skopeo"), "inspect", "--config", f"docker-archive:{path}"))
    assert info["rootfs"]["diff_ids"] == layer_digests


def test_umoci_unpacks_the_expected_files(images) -> None:
    root = images["root"]
    _, blobs = images["app"]
    bundle = root / "bundle-app"
    _run(require_tool("umoci"), "unpack", "--rootless", "--image", f"{root}/app/layout:v1", str(bundle))
    expected = _expected_files(blobs)
    assert expected["etc/hostname"] == b"overridden\n"  # the upper layer wins
    assert _unpacked_files(bundle / "rootfs") == expected
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == ["/app/run"]


@pytest.mark.parametrize("arch, oci_arch, variant", [("x86_64", "amd64", None), ("aarch64", "arm64", "v8")])
def test_multi_arch_platforms_resolve_and_unpack(images, arch: str, oci_arch: str, variant) -> None:
    root = images["root"]
    multi, blobs = images["multi"]
    skopeo = require_tool("skopeo")
    override = ["--override-arch", oci_arch] + (["--override-variant", variant] if variant else [])
    info = json.loads(_run(skopeo, *override, "inspect", f"oci:{root}/multi/layout:latest"))
    assert info["Architecture"] == oci_arch
    (image,) = [i for i in multi.images if i.architecture == arch]
    raw = json.loads(_run(skopeo, "inspect", "--raw", f"oci:{root}/multi/layout:latest"))
    assert image.manifest.digest in [m["digest"] for m in raw["manifests"]]
    # umoci does not choose among an index's platforms: copy one platform out first.
    single = root / f"single-{arch}"
    _run(skopeo, *override, "copy", f"oci:{root}/multi/layout:latest", f"oci:{single}:latest")
    bundle = root / f"bundle-{arch}"
    _run(require_tool("umoci"), "unpack", "--rootless", "--image", f"{single}:latest", str(bundle))
    assert _unpacked_files(bundle / "rootfs") == _expected_files([blobs[arch]])
