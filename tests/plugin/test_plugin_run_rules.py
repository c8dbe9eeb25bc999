"""`pants run` wiring: only `oci_image` is runnable, and a missing runtime fails before any build."""

from __future__ import annotations

from pathlib import Path

import pytest
from pants.core.goals.run import RunRequest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants_oci import register
from pants_oci.goals.run import OciImageRunFieldSet
from testutil.plugin_rules import plugin_rules


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[
            *plugin_rules(),
            QueryRule(RunRequest, [OciImageRunFieldSet]),
        ],
        target_types=register.target_types(),
    )


def error_message(error: ExecutionError) -> str:
    """The last line of the engine's report, without the exception's type."""
    return str(error).strip().splitlines()[-1].split(": ", 1)[1]


BUILD = """\
apk_layer(name="packages", lockfile="apko.lock.json")
oci_layer(name="files", contents=[])
oci_image(name="app", layers=[":packages"])
"""


def test_only_images_are_runnable(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"img/BUILD": BUILD, "img/apko.lock.json": "{}"})
    applicable = {
        name: OciImageRunFieldSet.is_applicable(rule_runner.get_target(Address("img", target_name=name)))
        for name in ("packages", "files", "app")
    }
    assert applicable == {"packages": False, "files": False, "app": True}


def test_no_runtime_fails_with_one_line_before_building(rule_runner: RuleRunner, tmp_path: Path) -> None:
    # The lockfile is not even valid: the runtime is looked for before the image is built.
    rule_runner.write_files({"img/BUILD": BUILD, "img/apko.lock.json": "{}"})
    rule_runner.set_options([f"--oci-executable-search-paths=['{tmp_path}']"])
    target = rule_runner.get_target(Address("img", target_name="app"))
    with pytest.raises(ExecutionError) as error:
        rule_runner.request(RunRequest, [OciImageRunFieldSet.create(target)])
    assert error_message(error.value) == (
        f"img:app: `pants run` needs podman or docker, and neither is on the search path "
        f"({tmp_path}): install one, or set [oci].runtime and [oci].executable_search_paths."
    )


def test_unknown_runtime_is_refused(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"img/BUILD": BUILD, "img/apko.lock.json": "{}"})
    rule_runner.set_options(["--oci-runtime=nerdctl"])
    target = rule_runner.get_target(Address("img", target_name="app"))
    with pytest.raises(ExecutionError) as error:
        rule_runner.request(RunRequest, [OciImageRunFieldSet.create(target)])
    assert error_message(error.value).startswith("[oci].runtime is 'nerdctl': set it to podman or docker")
