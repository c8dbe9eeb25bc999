"""`python -m ocibuild oci-image`: the request file, blob checks against layer.json, output and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.oci.request import load_request
from testutil.oci_layers import write_layer

SRC = Path(__file__).resolve().parents[2] / "src" / "python"


def _request(tmp_path: Path, **overrides: Any) -> Path:
    write_layer(tmp_path / "layers/0/x86_64/out", {"etc/os": b"x86\n"}, "x86_64", "layer")
    write_layer(tmp_path / "layers/1/all/out", {"app/bin": b"app\n"}, None, "layer")
    request: Dict[str, Any] = {
        "base": None,
        "base_name": None,
        "layers": [
            {
                "blob": "layers/0/x86_64/out/layer.tar.gz",
                "descriptor": "layers/0/x86_64/out/layer.json",
                "architecture": "x86_64",
                "created_by": "apk_layer //images:packages",
            },
            {
                "blob": "layers/1/all/out/layer.tar.gz",
                "descriptor": "layers/1/all/out/layer.json",
                "architecture": None,
                "created_by": "oci_layer //app:files",
            },
        ],
        "architectures": None,
        "config": {"env": {"PATH": "/bin"}, "user": "1000", "exposed_ports": ["8080"]},
        "annotations": {"org.opencontainers.image.title": "app"},
        "created": None,
        "repository": "images/app",
        "tag": "latest",
    }
    request.update(overrides)
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    return path


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", "oci-image", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_cli_builds_and_prints_the_digest(tmp_path: Path) -> None:
    _request(tmp_path)
    result = _run(tmp_path, "--request=request.json", "--output-dir=out")
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads((tmp_path / "out/layout/index.json").read_text())["manifests"]
    assert result.stdout == entry["digest"] + "\n"
    assert json.loads((tmp_path / "out/image.json").read_text())["digest"] == entry["digest"]


def test_the_request_compression_reaches_the_layout(tmp_path: Path) -> None:
    _request(tmp_path, compression="zstd")
    result = _run(tmp_path, "--request=request.json", "--output-dir=out")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out/layout/blobs/sha256" / result.stdout.strip()[7:]).read_text())
    assert {d["mediaType"] for d in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}


def test_relative_paths_are_relative_to_the_request(tmp_path: Path) -> None:
    _request(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _run(elsewhere, f"--request={tmp_path / 'request.json'}", "--output-dir=out")
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "out/image.oci.tar").is_file()


def test_tampered_layer_fails_with_one_line_naming_the_blob(tmp_path: Path) -> None:
    _request(tmp_path)
    blob = tmp_path / "layers/1/all/out/layer.tar.gz"
    blob.write_bytes(blob.read_bytes() + b"\0")
    result = _run(tmp_path, "--request=request.json", "--output-dir=out")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    # Paths are reported as the request names them (relative to its folder).
    assert result.stderr.startswith(
        "error: layers/1/all/out/layer.tar.gz: blob does not match its descriptor"
    )
    assert not (tmp_path / "out").exists()


def test_wrong_diff_id_is_caught(tmp_path: Path) -> None:
    _request(tmp_path)
    descriptor = tmp_path / "layers/0/x86_64/out/layer.json"
    meta = json.loads(descriptor.read_text())
    meta["diff_id"] = "sha256:" + "0" * 64
    descriptor.write_text(json.dumps(meta))
    with pytest.raises(
        OciBuildError,
        match=r"layer.tar.gz: uncompressed layer has diff_id sha256:[0-9a-f]{64}, not sha256:0{64}",
    ):
        load_request(tmp_path / "request.json")


def test_architecture_mismatch_with_descriptor(tmp_path: Path) -> None:
    path = _request(tmp_path)
    request = json.loads(path.read_text())
    request["layers"][0]["architecture"] = "aarch64"
    path.write_text(json.dumps(request))
    with pytest.raises(
        OciBuildError, match="layer.json: the layer is built for x86_64, but the request says aarch64"
    ):
        load_request(path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"colour": "red"}, r"unknown key\(s\) colour"),
        ({"config": {"entrypoint": "/bin/sh"}}, r"`config.entrypoint` must be a list of strings"),
        ({"created": -1}, r"`created` must be a non-negative integer"),
        ({"tag": None}, r"`tag` must be a string"),
        (
            {"created": 10**20},
            r"`created` must be a non-negative integer \(SOURCE_DATE_EPOCH\) up to 253402300799",
        ),
        ({"created": 253402300800}, r"`created` must be a non-negative integer"),
        ({"layers": 5}, r"`layers` must be a list"),
        ({"layers": {"blob": "x"}}, r"`layers` must be a list"),
        ({"config": []}, r"`config` must be an object"),
        ({"annotations": ""}, r"`annotations` must be an object of strings"),
    ],
)
def test_bad_requests_are_rejected(tmp_path: Path, overrides: Dict[str, Any], message: str) -> None:
    with pytest.raises(OciBuildError, match=message):
        load_request(_request(tmp_path, **overrides))


@pytest.mark.parametrize("layers", ["5", '{"blob": "x"}'])
def test_malformed_request_through_the_cli_is_one_line(tmp_path: Path, layers: str) -> None:
    (tmp_path / "request.json").write_text('{"repository": "a", "tag": "b", "layers": %s}' % layers)
    result = _run(tmp_path, "--request=request.json", "--output-dir=out")
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        result.stderr
        == f"error: request.json: `layers` must be a list of objects, got {json.loads(layers)!r}\n"
    )


def test_output_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    _request(tmp_path)
    (tmp_path / "afile").write_text("x")
    for out in ("afile", "afile/out"):
        result = _run(tmp_path, "--request=request.json", f"--output-dir={out}")
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"error: {out}: ") and result.stderr.count("\n") == 1, result.stderr
    assert (tmp_path / "afile").read_text() == "x"


def test_request_fields_reach_the_image(tmp_path: Path) -> None:
    request = load_request(_request(tmp_path, created=86400, architectures=["x86_64"]))
    assert request.created == 86400
    assert request.architectures == ("x86_64",)
    assert request.config.env == (("PATH", "/bin"),)
    assert request.config.exposed_ports == ("8080",)
    assert [layer.architecture for layer in request.layers] == ["x86_64", None]
    assert [layer.created_by for layer in request.layers] == [
        "apk_layer //images:packages",
        "oci_layer //app:files",
    ]


def test_duplicate_key_in_request_is_one_line_naming_key_and_line(tmp_path: Path) -> None:
    path = _request(tmp_path)
    text = path.read_text()
    path.write_text(text[:-1] + ',\n"tag": "other"}')
    result = _run(tmp_path, "--request=request.json", "--output-dir=out")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: request.json: line 2: duplicate key 'tag': each key may appear once; remove one\n"
    )
    assert not (tmp_path / "out").exists()


def test_duplicate_key_in_layer_descriptor_is_refused(tmp_path: Path) -> None:
    path = _request(tmp_path)
    descriptor = tmp_path / "layers/0/x86_64/out/layer.json"
    descriptor.write_text(descriptor.read_text().rstrip()[:-1] + ',\n  "size": 1\n}\n')
    with pytest.raises(OciBuildError) as e:
        load_request(path)
    assert str(e.value).startswith(f"{descriptor}: line ") and "duplicate key 'size'" in str(e.value)


def test_duplicate_key_in_a_base_layout_is_refused(tmp_path: Path) -> None:
    import hashlib

    from ocibuild.oci.layout import load_layout

    _request(tmp_path)
    assert _run(tmp_path, "--request=request.json", "--output-dir=out").returncode == 0
    layout = tmp_path / "out/layout"
    assert load_layout(layout).path == layout
    index_file = layout / "index.json"
    index_text = index_file.read_text()

    index_file.write_text(index_text.rstrip()[:-1] + ',\n"schemaVersion": 2}')
    with pytest.raises(OciBuildError, match=rf"^{index_file}: line 2: duplicate key 'schemaVersion'"):
        load_layout(layout)

    # A manifest blob with a duplicate key (and the right digest) is refused as well.
    (entry,) = json.loads(index_text)["manifests"]
    old = layout / "blobs/sha256" / entry["digest"].split(":")[1]
    manifest = old.read_bytes().rstrip()[:-1] + b',\n"schemaVersion":2}'
    digest = hashlib.sha256(manifest).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(manifest)
    index = json.loads(index_text)
    index["manifests"][0].update(digest="sha256:" + digest, size=len(manifest))
    index_file.write_text(json.dumps(index))
    with pytest.raises(OciBuildError, match=r"manifest blob\): line 2: duplicate key 'schemaVersion'"):
        load_layout(layout)
