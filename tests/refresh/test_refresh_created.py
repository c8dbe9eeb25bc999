"""The image's `created` when the request sets none: the newest of its layers' mtimes (an APK
layer's is its newest package's build time) and its base's `created`, as apko does; an explicit
`created` (SOURCE_DATE_EPOCH, [oci].source_date_epoch) wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ocibuild.oci.image import build_image
from ocibuild.oci.request import load_request
from testutil.oci_layers import write_layer

BUILD_TIME = 1709251200  # 2024-03-01T00:00:00Z


def layer(folder: Path, mtime: Optional[int]) -> dict:
    blob, descriptor = write_layer(folder, {"etc/motd": b"hi\n"}, None, "layer")
    data = json.loads(descriptor.read_text())
    data["mtime"] = mtime
    descriptor.write_text(json.dumps(data))
    return {
        "blob": str(blob.relative_to(folder.parent)),
        "descriptor": str(descriptor.relative_to(folder.parent)),
    }


def build(root: Path, name: str, **request: Any) -> dict:
    body = {"repository": "images/app", "tag": "latest", "architectures": ["x86_64"], **request}
    path = root / f"{name}.json"
    path.write_text(json.dumps(body))
    result = build_image(load_request(path), root / name)
    layout = root / name / "layout"
    config_digest = result.images[0].config.digest
    return json.loads((layout / "blobs/sha256" / config_digest.split(":")[1]).read_bytes())


def test_created_defaults_to_the_newest_layer_time_and_the_base(tmp_path: Path) -> None:
    apk = layer(tmp_path / "apk", BUILD_TIME)
    files = layer(tmp_path / "files", 0)  # plain files: SOURCE_DATE_EPOCH's default, 0
    config = build(tmp_path, "base", layers=[apk, files])
    assert config["created"] == "2024-03-01T00:00:00Z"
    assert {h["created"] for h in config["history"]} == {"2024-03-01T00:00:00Z"}

    # On that base: no layer of its own, or an older one: the base's time stays.
    derived = build(tmp_path, "derived", base="base/layout", layers=[layer(tmp_path / "more", 0)])
    assert derived["created"] == "2024-03-01T00:00:00Z"
    # A newer package moves the date.
    newer = build(tmp_path, "newer", base="base/layout", layers=[layer(tmp_path / "new", BUILD_TIME + 86400)])
    assert newer["created"] == "2024-03-02T00:00:00Z"


def test_explicit_created_wins_and_no_time_is_1970(tmp_path: Path) -> None:
    apk = layer(tmp_path / "apk", BUILD_TIME)
    assert build(tmp_path, "explicit", layers=[apk], created=1700000000)["created"] == "2023-11-14T22:13:20Z"
    untimed = layer(tmp_path / "untimed", None)
    assert build(tmp_path, "none", layers=[untimed])["created"] == "1970-01-01T00:00:00Z"
