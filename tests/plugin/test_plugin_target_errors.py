"""Misused targets fail with one line that names the target and what to do (run by Pants' engine)."""

from __future__ import annotations

import pytest
from pants.backend.python.goals import lockfile as python_lockfile
from pants.core.goals import generate_lockfiles, package
from pants.core.goals.package import BuiltPackage
from pants.core.target_types import FilesGeneratorTarget, FileTarget
from pants.core.util_rules import archive
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import HydratedSources, HydrateSourcesRequest
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants_oci import register
from pants_oci.errors import OciImageBaseError, OciImageLayersError
from pants_oci.goals.package import BuiltImage, OciImageFieldSet
from pants_oci.target_types import ApkLockfileField
from pants_oci.util_rules.layers import ApkLayerFieldSet, FileLayerFieldSet


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *register.rules(),
            *generate_lockfiles.rules(),
            *python_lockfile.rules(),
            *package.rules(),
            *archive.rules(),
            QueryRule(BuiltImage, [OciImageFieldSet]),
            QueryRule(BuiltPackage, [ApkLayerFieldSet]),
            QueryRule(BuiltPackage, [FileLayerFieldSet]),
            QueryRule(HydratedSources, [HydrateSourcesRequest]),
        ],
        target_types=[*register.target_types(), FileTarget, FilesGeneratorTarget],
    )


def error_message(error: ExecutionError) -> str:
    """The last line of the engine's report, without the exception's type."""
    return str(error).strip().splitlines()[-1].split(": ", 1)[1]


def test_missing_lockfile_says_how_to_write_it(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"img/BUILD": 'apk_layer(name="packages", lockfile="gone.lock.json")'})
    target = rule_runner.get_target(Address("img", target_name="packages"))
    with pytest.raises(ExecutionError) as error:
        rule_runner.request(HydratedSources, [HydrateSourcesRequest(target[ApkLockfileField])])
    assert error_message(error.value) == (
        "img:packages: the lockfile img/gone.lock.json does not exist: write it "
        "with `pants generate-lockfiles` (its spec must be in [apk].resolves), or fix `lockfile`."
    )


def test_base_that_is_not_an_image_is_named(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "img/BUILD": 'file(name="motd", source="motd")\noci_image(name="app", base=":motd", layers=[])',
            "img/motd": "hello\n",
        }
    )
    target = rule_runner.get_target(Address("img", target_name="app"))
    with pytest.raises(ExecutionError) as error:
        rule_runner.request(BuiltImage, [OciImageFieldSet.create(target)])
    assert [type(e) for e in error.value.wrapped_exceptions] == [OciImageBaseError]
    assert error_message(error.value) == (
        "img:app: `base` names img:motd (file), not one `oci_image` target: point it at "
        "an image (e.g. //images/static:static), or leave it unset to build on scratch."
    )


def test_layer_that_is_not_a_layer_is_named(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "img/BUILD": 'file(name="motd", source="motd")\noci_image(name="app", layers=[":motd"])',
            "img/motd": "hello\n",
        }
    )
    target = rule_runner.get_target(Address("img", target_name="app"))
    with pytest.raises(ExecutionError) as error:
        rule_runner.request(BuiltImage, [OciImageFieldSet.create(target)])
    assert [type(e) for e in error.value.wrapped_exceptions] == [OciImageLayersError]
    assert error_message(error.value) == (
        "img:app: `layers` may name layer targets only (`apk_layer`, `oci_layer`, or a plugin's layer "
        "kind), not img:motd (file); wrap files and packages in an `oci_layer`."
    )
