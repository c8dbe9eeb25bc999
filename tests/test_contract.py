"""ocibuild.contract: the requests and results crossing the plugin/core boundary, their JSON, and the
docs describing them (docs/contract.md, docs/oci-image.md), kept in step with the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Type

import pytest
from ocibuild import contract
from ocibuild.__main__ import COMMANDS
from ocibuild.common.validate import field_names
from ocibuild.contract import (
    REQUESTS,
    RESULTS,
    ApkFetchRequest,
    ApkLayerRequest,
    ApkLockRequest,
    FilesLayerRequest,
    ImageConfig,
    ImageLayer,
    ImageMetadata,
    LayerDescriptor,
    OciImageRequest,
    PlatformImageMetadata,
    Record,
)
from ocibuild.errors import OciBuildError

ROOT = Path(__file__).resolve().parents[1]  # the repository, or the test's sandbox
DOCS = ROOT / "docs"

RECORDS: List[Type[Record]] = [
    cls
    for cls in vars(contract).values()
    if isinstance(cls, type) and issubclass(cls, Record) and cls not in (Record, contract.Request)
]

SAMPLES: List[Record] = [
    ApkLockRequest(
        spec="img/apko.yaml", output="img/apko.lock.json", mirrors=(("https://a/", ("file:///m/",)),)
    ),
    ApkLayerRequest(lockfile="l.json", arch="x86_64", packages_dir="apks/x86_64", packages=("busybox",)),
    ApkFetchRequest(
        url="https://a/x-1.apk", sha256="0" * 64, size=5, output="x-1.apk", candidates=("file:///m/x-1.apk",)
    ),
    FilesLayerRequest(destination="/usr/bin", files=("files/hello",), mode="0755", source_date_epoch=5),
    OciImageRequest(
        repository="images/app",
        tag="v1",
        layers=(
            ImageLayer("layers/0/all/out/layer.tar.gz", "layers/0/all/out/layer.json", None, "oci_layer x"),
        ),
        config=ImageConfig(entrypoint=("/app",), env=(("B", "2"), ("A", "1"))),
        annotations=(("org.opencontainers.image.source", "https://example.com"),),
        created=1700000000,
        compression="zstd",
    ),
]


def test_every_record_is_covered_here() -> None:
    assert {type(s) for s in SAMPLES} == set(REQUESTS.values())
    assert set(RESULTS.values()) | {ImageLayer, ImageConfig, PlatformImageMetadata} | set(
        REQUESTS.values()
    ) == set(RECORDS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_requests_round_trip_through_json(sample: Record) -> None:
    data = sample.to_json()
    assert type(sample).from_json(data, "request.json") == sample
    assert data == type(sample).from_json(data, "request.json").to_json()  # byte-stable


def test_mappings_keep_their_order_and_accept_the_documented_spellings() -> None:
    spelled = b'{"repository": "a", "tag": "b", "config": {"env": ["B=2", ["A", "1"]]}}'
    assert OciImageRequest.from_json(spelled, "r.json").config.env == (("B", "2"), ("A", "1"))


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"repository": "a"}', "r.json: `tag` is required (a string)"),
        (b'{"repository": "a", "tag": "b", "colour": 1}', "r.json: has unknown key(s) colour; allowed: "),
        (
            b'{"repository": "a", "tag": "b", "config": {"env": 5}}',
            "r.json: `config.env` must be an object of strings",
        ),
        (b'{"repository": "a", "tag": true}', "r.json: `tag` must be a string, got True"),
        (
            b'{"repository": "a", "tag": "b", "layers": [{"blob": 1}]}',
            "r.json: `layers[0].blob` must be a string",
        ),
        (
            b'{"repository": "a", "tag": "b", "created": -1}',
            "r.json: `created` must be a non-negative integer",
        ),
        (
            b'{"repository": "a", "tag": "b", "compression": "xz"}',
            "r.json: `compression` is 'xz'; use one of gzip, zstd",
        ),
        (b'{"repository": "a", "tag": "b", "tag": "c"}', "r.json: line 1: duplicate key 'tag'"),
        (b"\xff", "r.json: not UTF-8 text"),
    ],
)
def test_bad_requests_are_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(OciBuildError) as error:
        OciImageRequest.from_json(data, "r.json")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_integers_are_not_booleans() -> None:
    with pytest.raises(OciBuildError, match="`retries` must be an integer, got True"):
        ApkLockRequest.from_json(b'{"spec": "s", "output": "o", "retries": true}', "r.json")


def test_every_request_has_a_command() -> None:
    for command, request in REQUESTS.items():
        assert request.command == command and command in COMMANDS
        (sample,) = [s for s in SAMPLES if isinstance(s, request)]
        assert sample.argv() == (command, "--request=request.json")


def test_layer_descriptors_ignore_what_builders_add() -> None:
    data = json.dumps(
        {
            "digest": "sha256:" + "a" * 64,
            "size": 3,
            "diff_id": "sha256:" + "b" * 64,
            "packages": [{"name": "x"}],
        }
    ).encode()
    assert LayerDescriptor.from_json(data, "layer.json").size == 3


def test_the_contract_needs_the_standard_library_only() -> None:
    """The plugin imports it in Pants' process: no PyYAML, requests or cryptography."""
    code = (
        "import sys, ocibuild.contract\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('yaml', 'requests', 'urllib3', 'cryptography', 'nacl', 'ocibuild'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src" / "python")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    loaded = run.stdout.split()
    assert set(loaded) <= {
        "ocibuild",
        "ocibuild.contract",
        "ocibuild.errors",
        "ocibuild.strictload",
        "ocibuild.common",
        "ocibuild.common.validate",
    }, loaded


# ---- the docs, in step with the fields ---------------------------------------------------------


def _doc_tables(text: str) -> Dict[str, List[str]]:
    """`### `Name`...` heading -> the first column's keys of the table under it."""
    tables: Dict[str, List[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            current = heading.group(1)
            tables[current] = []
        elif current and line.startswith("| `"):
            tables[current].append(line.split("`")[1])
    return tables


def test_docs_contract_md_lists_every_field_and_no_other() -> None:
    tables = _doc_tables((DOCS / "contract.md").read_text())
    assert set(tables) == {cls.__name__ for cls in RECORDS}
    for cls in RECORDS:
        assert tables[cls.__name__] == list(field_names(cls)), cls.__name__


def _json_block_keys(text: str) -> Set[str]:
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    return set(re.findall(r'"(\w+)":', block))


def test_docs_oci_image_md_request_example_has_every_key() -> None:
    keys = _json_block_keys((DOCS / "oci-image.md").read_text())
    documented = (
        set(field_names(OciImageRequest)) | set(field_names(ImageLayer)) | set(field_names(ImageConfig))
    )
    # Keys of the example's free-form objects (env, labels, annotations values) are not fields.
    assert keys - {"NAME"} == documented


def test_docs_oci_image_md_describes_every_image_json_key() -> None:
    text = (DOCS / "oci-image.md").read_text()
    bullet = text.split("- **image.json**", 1)[1].split("\n\n", 1)[0]
    mentioned = set(re.findall(r"`(\w+)`", bullet))
    assert set(field_names(ImageMetadata)) | set(field_names(PlatformImageMetadata)) <= mentioned


def test_docs_name_the_output_files() -> None:
    text = (DOCS / "contract.md").read_text()
    for name in (
        contract.OUTPUT_DIR,
        contract.REQUEST_FILE,
        contract.LAYER_BLOB,
        contract.LAYER_DESCRIPTOR,
        contract.IMAGE_LAYOUT,
        contract.IMAGE_METADATA,
        contract.OCI_ARCHIVE,
        contract.DOCKER_ARCHIVE,
    ):
        assert f"`{name}" in text, name


def test_real_outputs_read_as_results(tmp_path: Path) -> None:
    """files-layer's layer.json is a LayerDescriptor as the contract reads it."""
    from ocibuild.__main__ import main

    (tmp_path / "hello").write_bytes(b"hi\n")
    request = FilesLayerRequest(
        destination="/srv",
        files=(str(tmp_path / "hello"),),
        output_layer=str(tmp_path / "out/layer.tar.gz"),
        output_descriptor=str(tmp_path / "out/layer.json"),
    )
    (tmp_path / "request.json").write_bytes(request.to_json())
    assert main(["files-layer", f"--request={tmp_path / 'request.json'}"]) == 0
    descriptor = LayerDescriptor.from_json((tmp_path / "out/layer.json").read_bytes(), "layer.json")
    assert descriptor.size == (tmp_path / "out/layer.tar.gz").stat().st_size
