"""`files-layer`: plain files under a destination directory, reproducible and checked."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from ocibuild.__main__ import main
from ocibuild.errors import OciBuildError
from ocibuild.layer.files_layer import FilesLayerOptions, files_layer_entries, parse_mode, parse_owner
from testutil.tars import member_bytes


def make_inputs(root: Path) -> list:
    (root / "bin").mkdir(parents=True)
    tool = root / "bin" / "hello"
    tool.write_bytes(b"\x7fELF fake binary")
    tool.chmod(0o700)
    config = root / "hello.conf"
    config.write_text("greeting = Hello Distroless\n")
    config.chmod(0o600)
    return [str(tool), str(config)]


def build(tmp: Path, *extra: str) -> tuple:
    files = make_inputs(tmp / "in")
    out = tmp / "out"
    out.mkdir()
    rc = main(
        [
            "files-layer",
            "--destination=/usr/local/bin",
            f"--output-layer={out}/layer.tar.gz",
            f"--output-descriptor={out}/layer.json",
            *extra,
            *files,
        ]
    )
    assert rc == 0
    return (out / "layer.tar.gz").read_bytes(), json.loads((out / "layer.json").read_text())


def test_layer_places_files_with_modes_owner_and_parents(tmp_path: Path) -> None:
    blob, descriptor = build(tmp_path, "--owner=65532:65532")
    raw = gzip.decompress(blob)
    assert descriptor["digest"] == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert descriptor["diff_id"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert descriptor["size"] == len(blob)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == [
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/hello",
            "usr/local/bin/hello.conf",
        ]
        assert members["usr/local"].isdir() and members["usr/local"].mode == 0o755
        assert members["usr/local"].uid == 0
        hello = members["usr/local/bin/hello"]
        assert (hello.mode, hello.uid, hello.gid, hello.mtime) == (0o755, 65532, 65532, 0)
        assert hello.uname == "" and hello.gname == ""
        assert members["usr/local/bin/hello.conf"].mode == 0o644
        assert member_bytes(tar, hello) == b"\x7fELF fake binary"


def test_explicit_mode_and_epoch(tmp_path: Path) -> None:
    blob, descriptor = build(tmp_path, "--mode=0555", "--source-date-epoch=1700000000")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        conf = tar.getmember("usr/local/bin/hello.conf")
        assert (conf.mode, conf.mtime) == (0o555, 1700000000)
    assert descriptor["mtime"] == 1700000000


def test_same_inputs_same_bytes_whatever_umask_and_folder(tmp_path: Path) -> None:
    first, _ = build(tmp_path / "one")
    old = os.umask(0o077)
    try:
        second, _ = build(tmp_path / "two" / "deeper")
    finally:
        os.umask(old)
    assert first == second


@pytest.mark.parametrize(
    "destination, message",
    [("usr/bin", "must be an absolute path"), ("/usr/../../etc", "..")],
)
def test_bad_destination_is_refused(tmp_path: Path, destination: str, message: str) -> None:
    files = make_inputs(tmp_path)
    with pytest.raises(OciBuildError, match=message):
        files_layer_entries(files, FilesLayerOptions(destination=destination))


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "app").write_text("1")
    (tmp_path / "b" / "app").write_text("2")
    with pytest.raises(OciBuildError, match="would both be /app"):
        files_layer_entries([str(tmp_path / "a/app"), str(tmp_path / "b/app")], FilesLayerOptions("/"))


def test_owner_and_mode_syntax() -> None:
    assert parse_owner("65532:65532") == (65532, 65532)
    assert parse_mode("0755") == 0o755
    with pytest.raises(OciBuildError, match="numeric `uid:gid`"):
        parse_owner("nonroot")
    assert parse_owner("4294967294:0") == (4294967294, 0)
    for owner in ("-1:0", "0:4294967295", "99999999999:0"):
        with pytest.raises(OciBuildError, match=f"owner '{owner}': ids must be from 0 to 4294967294"):
            parse_owner(owner)
    with pytest.raises(OciBuildError, match="only permission bits"):
        parse_mode("4755")
