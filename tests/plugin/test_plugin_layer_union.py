"""A third-party layer kind plugs into `oci_image(layers=...)` through the OciLayerFieldSet union,
without editing pants_oci; `[oci].source_date_epoch` reaches the image request."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from ocibuild.__main__ import main as ocibuild_main
from ocibuild.common.digests import sha256_digest
from ocibuild.contract import LAYER_BLOB, LAYER_DESCRIPTOR, OUTPUT_DIR, REQUEST_FILE, ImageMetadata
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, rule
from pants.engine.target import COMMON_TARGET_FIELDS, StringField, Target
from pants.engine.unions import UnionRule
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants_oci import register
from pants_oci.goals.package import OciImageFieldSet, OciImageInputs
from pants_oci.util_rules.layers import BuiltLayer, BuiltLayers, OciLayerFieldSet
from testutil.plugin_rules import plugin_rules

# ---- a plugin's layer kind: one file /hello.txt holding `text` --------------------------------


class HelloTextField(StringField):
    alias = "text"
    required = True
    help = "What /hello.txt says."


class HelloLayerTarget(Target):
    alias = "hello_layer"
    core_fields = (*COMMON_TARGET_FIELDS, HelloTextField)
    help = "A layer with one file, /hello.txt."


@dataclass(frozen=True)
class HelloLayerFieldSet(OciLayerFieldSet):
    required_fields = (HelloTextField,)

    text: HelloTextField


def _hello_layer(text: str) -> tuple:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(text.encode())
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(text.encode()))
    blob = gzip.compress(raw.getvalue(), mtime=0)
    descriptor = {"diff_id": sha256_digest(raw.getvalue()), "digest": sha256_digest(blob), "size": len(blob)}
    return blob, json.dumps(descriptor).encode()


@rule
async def build_hello_layer(field_set: HelloLayerFieldSet) -> BuiltLayers:
    blob, descriptor = _hello_layer(field_set.text.value or "")
    digest = await Get(
        Digest,
        CreateDigest(
            [
                FileContent(f"{OUTPUT_DIR}/{LAYER_BLOB}", blob),
                FileContent(f"{OUTPUT_DIR}/{LAYER_DESCRIPTOR}", descriptor),
            ]
        ),
    )
    return BuiltLayers((BuiltLayer(None, digest, OUTPUT_DIR),), created_by=f"hello_layer {field_set.address}")


# ----------------------------------------------------------------------------------------------


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *plugin_rules(),
            build_hello_layer,
            UnionRule(OciLayerFieldSet, HelloLayerFieldSet),
            QueryRule(OciImageInputs, [OciImageFieldSet]),
        ],
        target_types=[*register.target_types(), HelloLayerTarget],
    )


BUILD = """\
hello_layer(name="hello", text="hello from a plugin\\n")
oci_image(name="app", layers=[":hello"], architectures=["x86_64"], entrypoint=["/bin/cat", "/hello.txt"])
"""


def _inputs(rule_runner: RuleRunner) -> OciImageInputs:
    rule_runner.write_files({"img/BUILD": BUILD})
    target = rule_runner.get_target(Address("img", target_name="app"))
    return rule_runner.request(OciImageInputs, [OciImageFieldSet.create(target)])


def test_a_plugins_layer_kind_lands_in_the_image(rule_runner: RuleRunner, tmp_path: Path) -> None:
    inputs = _inputs(rule_runner)
    (layer,) = inputs.request.layers
    assert (layer.architecture, layer.created_by) == (None, "hello_layer img:hello")

    # The core builds the image from exactly what the plugin would give its Process.
    rule_runner.write_digest(inputs.digest, path_prefix="sandbox")
    sandbox = Path(rule_runner.build_root, "sandbox")
    (sandbox / REQUEST_FILE).write_bytes(inputs.request.to_json())
    out = tmp_path / "out"
    assert ocibuild_main(["oci-image", f"--request={sandbox / REQUEST_FILE}", f"--output-dir={out}"]) == 0
    metadata = ImageMetadata.from_json((out / "image.json").read_bytes(), "image.json")
    ((_, image),) = metadata.images
    config = json.loads((out / "layout/blobs/sha256" / image.config.split(":")[1]).read_bytes())
    _, descriptor = _hello_layer("hello from a plugin\n")
    assert config["rootfs"]["diff_ids"] == [json.loads(descriptor)["diff_id"]]
    assert config["history"][0]["created_by"] == "hello_layer img:hello"


def test_source_date_epoch_is_an_oci_option(rule_runner: RuleRunner) -> None:
    assert _inputs(rule_runner).request.created is None
    rule_runner.set_options(["--oci-source-date-epoch=1700000000"])
    assert _inputs(rule_runner).request.created == 1700000000
