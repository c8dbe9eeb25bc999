"""The same inputs give the same bytes: layout, archives and metadata, whatever the folder or umask."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
from ocibuild.oci.config import ConfigOptions
from ocibuild.oci.image import ImageRequest, build_image
from testutil.oci_layers import CA_BUNDLE, apk_files, layer_input, mirror_apk, tree_bytes


def _build(folder: Path, umask: int, created=None):
    old = os.umask(umask)
    try:
        layers = (
            layer_input(folder / "in", apk_files(mirror_apk("x86_64", CA_BUNDLE["x86_64"])), "x86_64", "ca"),
            layer_input(folder / "in", {"app/hello.txt": b"hello\n"}, None, "app"),
        )
        request = ImageRequest(
            repository="images/app",
            tag="latest",
            layers=layers,
            config=ConfigOptions(env=(("PATH", "/bin"),), cmd=("/app/hello",)),
            annotations=(("org.opencontainers.image.source", "images/app"),),
            created=created,
        )
        return build_image(request, folder / "deep" / "out")
    finally:
        os.umask(old)


def test_two_builds_in_different_folders_are_byte_identical(tmp_path: Path) -> None:
    a = _build(tmp_path / "a", 0o022)
    b = _build(tmp_path / "b" / "elsewhere", 0o077)
    tree_a = tree_bytes(tmp_path / "a/deep/out")
    tree_b = tree_bytes(tmp_path / "b/elsewhere/deep/out")
    assert a.digest == b.digest
    assert sorted(tree_a) == [
        "image.docker.tar",
        "image.json",
        "image.oci.tar",
        *sorted(f"layout/{n}" for n in tree_bytes(tmp_path / "a/deep/out/layout")),
        "sbom/x86_64.spdx.json",
    ]
    assert tree_a == tree_b


def test_every_blob_is_named_by_its_sha256(tmp_path: Path) -> None:
    _build(tmp_path, 0o022)
    blobs = list((tmp_path / "deep/out/layout/blobs/sha256").iterdir())
    assert len(blobs) == 4  # two layers, config, manifest
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_json_is_canonical_and_has_no_wall_clock_time(tmp_path: Path) -> None:
    result = _build(tmp_path, 0o022)
    layout = tmp_path / "deep/out/layout"
    for blob in (layout / "blobs/sha256").iterdir():
        data = blob.read_bytes()
        if data[:1] == b"{":
            assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    config = json.loads((layout / "blobs/sha256" / result.images[0].config.digest[7:]).read_bytes())
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert {h["created"] for h in config["history"]} == {"1970-01-01T00:00:00Z"}


def test_source_date_epoch_sets_created(tmp_path: Path) -> None:
    result = _build(tmp_path, 0o022, created=1700000000)
    config = json.loads(
        (tmp_path / "deep/out/layout/blobs/sha256" / result.images[0].config.digest[7:]).read_bytes()
    )
    assert config["created"] == "2023-11-14T22:13:20Z"


def test_archives_are_normalized_tars(tmp_path: Path) -> None:
    _build(tmp_path, 0o077)
    for name in ("image.oci.tar", "image.docker.tar"):
        with tarfile.open(tmp_path / "deep/out" / name) as tar:
            members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names), name
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", ""), (name, m.name)
            assert m.mode == (0o755 if m.isdir() else 0o644), (name, m.name)


def test_a_failed_build_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    _build(tmp_path, 0o022)
    before = tree_bytes(tmp_path / "deep/out")
    layer = layer_input(tmp_path / "gone", {"x": b"x"}, "x86_64")
    layer.blob.unlink()  # vanishes after it was checked: the failure comes half-way through writing
    with pytest.raises(FileNotFoundError):
        build_image(
            ImageRequest(repository="images/app", tag="latest", layers=(layer,)), tmp_path / "deep/out"
        )
    assert tree_bytes(tmp_path / "deep/out") == before
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]  # no temp folders left
