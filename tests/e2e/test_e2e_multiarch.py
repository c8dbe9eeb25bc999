"""End to end: one spec with two architectures gives one image index with a manifest per platform.

The repository is made and signed here with a test key (the offline Alpine slice has only one
architecture per release), served through `[apk].mirrors` like a corporate mirror would be.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

from testutil.apkbuild import TEST_KEY, build_apk, reg_file, write_keys, write_repository
from testutil.checkout import make_checkout, run_pants
from testutil.servers import require_tool
from testutil.tars import member_bytes

UPSTREAM = "https://packages.example.invalid/test/"
SPEC = f"""\
contents:
  repositories:
    - {UPSTREAM}main
  keyring:
    - {TEST_KEY.name}
  packages:
    - hello-data
archs:
  - x86_64
  - aarch64
"""
BUILD = """\
apk_layer(name="layer", lockfile="apko.lock.json")
oci_image(name="multi", layers=[":layer"], cmd=["/etc/hello-arch"])

file(name="motd", source="motd")
oci_layer(name="files", contents=[":motd"], destination="/etc", owner="65532:65532")
oci_image(name="scratch", layers=[":files"], architectures=["aarch64"])
"""


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout + result.stderr


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs/sha256" / digest.split(":")[1]).read_bytes()


def test_two_architectures_make_an_image_index(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    for arch in ("x86_64", "aarch64"):
        apk = build_apk(
            "hello-data", "1.0-r0", arch=arch, files=[reg_file("etc/hello-arch", arch.encode() + b"\n")]
        )
        write_repository(mirror / "main" / arch, [apk])
    checkout = make_checkout(tmp_path)
    image_dir = checkout / "images/multi"
    image_dir.mkdir()
    (image_dir / "apko.yaml").write_text(SPEC)
    (image_dir / "BUILD").write_text(BUILD)
    write_keys(image_dir, TEST_KEY)
    (image_dir / "motd").write_text("plain files on scratch\n")
    options = (
        '--apk-resolves=+{"multi": "images/multi/apko.yaml"}',
        f'--apk-mirrors=+{{"{UPSTREAM}": ["file://{mirror}/"]}}',
    )
    output = ok(
        run_pants(checkout, *options, "generate-lockfiles", "--generate-lockfiles-diff", "--resolve=multi")
    )
    assert "hello-data (aarch64)" in output and "hello-data (x86_64)" in output
    lock = json.loads((image_dir / "apko.lock.json").read_text())
    assert sorted(p["architecture"] for p in lock["contents"]["packages"]) == ["aarch64", "x86_64"]
    assert all(p["url"].startswith(UPSTREAM) for p in lock["contents"]["packages"])

    ok(run_pants(checkout, *options, "package", "images/multi:multi", "images/multi:scratch"))
    layout = checkout / "dist/images.multi/multi/layout"
    (top,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    index = json.loads(blob(layout, top["digest"]))
    platforms = {}
    for entry in index["manifests"]:
        manifest = json.loads(blob(layout, entry["digest"]))
        (layer,) = manifest["layers"]
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layout, layer["digest"])))) as tar:
            content = member_bytes(tar, "etc/hello-arch")
        config = json.loads(blob(layout, manifest["config"]["digest"]))
        platform = entry["platform"]
        assert (config["architecture"], config["os"]) == (platform["architecture"], platform["os"])
        platforms[(platform["architecture"], platform.get("variant"))] = content
    assert platforms == {("amd64", None): b"x86_64\n", ("arm64", "v8"): b"aarch64\n"}

    for arch in ("amd64", "arm64"):
        inspected = subprocess.run(
            [require_tool("skopeo"), "--override-arch", arch, "inspect", f"oci:{layout}:latest"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["Architecture"] == arch

    # Plain files on scratch: the architecture comes from the target, the files keep their owner.
    scratch = checkout / "dist/images.multi/scratch/layout"
    (entry,) = json.loads((scratch / "index.json").read_text())["manifests"]
    assert entry["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    (layer,) = json.loads(blob(scratch, entry["digest"]))["layers"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(scratch, layer["digest"])))) as tar:
        motd = tar.getmember("etc/motd")
        assert (motd.uid, motd.gid, motd.mode) == (65532, 65532, 0o644)
        assert member_bytes(tar, motd) == b"plain files on scratch\n"
