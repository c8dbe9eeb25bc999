"""Bad field values fail when BUILD files are read, with one line naming the target, the field and
what is allowed; OCI architecture names are accepted and normalised to Alpine's."""

from __future__ import annotations

from typing import Any

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import InvalidFieldException, InvalidTargetException
from pants.testutil.rule_runner import RuleRunner
from pants_oci import register
from pants_oci.target_types import (
    ApkArchitecturesField,
    ApkLockfileField,
    OciImageArchitecturesField,
    OciImageExposedPortsField,
    OciImageTagField,
    OciLayerDestinationField,
    OciLayerFileModeField,
    OciLayerOwnerField,
)
from testutil.plugin_rules import plugin_rules


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(rules=plugin_rules(), target_types=register.target_types())


def _target(rule_runner: RuleRunner, build: str):
    rule_runner.write_files({"img/BUILD": build, "img/apko.lock.json": "{}"})
    return rule_runner.get_target(Address("img", target_name="t"))


def _invalid(rule_runner: RuleRunner, build: str) -> str:
    with pytest.raises(ExecutionError) as error:
        _target(rule_runner, build)
    # Pants wraps the field's InvalidFieldException in an InvalidTargetException (with the BUILD
    # file's line) when it builds the target.
    wrapped = [e for e in error.value.wrapped_exceptions if isinstance(e, InvalidTargetException)]
    assert wrapped and isinstance(wrapped[0].__cause__, InvalidFieldException), error.value
    message = str(wrapped[0].__cause__)
    assert "\n" not in message.strip(), message
    return message


LAYER = 'oci_layer(name="t", contents=[], {field}={value!r})'
IMAGE = 'oci_image(name="t", layers=[], {field}={value!r})'
APK = 'apk_layer(name="t", lockfile="apko.lock.json", {field}={value!r})'


@pytest.mark.parametrize(
    "template, field, value, allowed",
    [
        (LAYER, "file_mode", "755x", "octal"),
        (LAYER, "file_mode", "0888", "octal"),
        (LAYER, "file_mode", "17777", "octal"),
        (LAYER, "owner", "root:root", "uid:gid"),
        (LAYER, "owner", "0", "uid:gid"),
        (LAYER, "destination", "app/bin", "absolute"),
        (LAYER, "destination", "/app/../etc", "`..`"),
        (IMAGE, "tag", "-latest", "tag"),
        (IMAGE, "tag", "v1:2", "tag"),
        (IMAGE, "tag", "a" * 129, "tag"),
        (IMAGE, "exposed_ports", ["0"], "65535"),
        (IMAGE, "exposed_ports", ["65536/tcp"], "65535"),
        (IMAGE, "exposed_ports", ["80/sctp"], "N/udp"),
        (IMAGE, "exposed_ports", ["http"], "N/tcp"),
        (IMAGE, "architectures", ["sparc"], "x86_64"),
        (IMAGE, "architectures", ["arm"], "arm/v7"),
        (APK, "architectures", ["mips"], "aarch64"),
    ],
)
def test_bad_value_names_target_field_and_what_is_allowed(
    rule_runner: RuleRunner, template: str, field: str, value: Any, allowed: str
) -> None:
    message = _invalid(rule_runner, template.format(field=field, value=value))
    assert "img:t" in message and repr(field) in message and allowed in message, message


def test_compute_value_raises_invalid_field_exception() -> None:
    address = Address("img", target_name="t")
    with pytest.raises(InvalidFieldException, match=r"'file_mode' field in target img:t is '9'"):
        OciLayerFileModeField.compute_value("9", address)
    with pytest.raises(InvalidFieldException, match=r"'architectures' field in target img:t is 'sparc'"):
        OciImageArchitecturesField.compute_value(["sparc"], address)


def test_good_values_pass(rule_runner: RuleRunner) -> None:
    layer = _target(
        rule_runner,
        'oci_layer(name="t", contents=[], file_mode="0755", owner="65532:65532", destination="/app/bin")',
    )
    assert layer[OciLayerFileModeField].value == "0755"
    assert layer[OciLayerOwnerField].value == "65532:65532"
    assert layer[OciLayerDestinationField].value == "/app/bin"
    image = _target(
        rule_runner,
        'oci_image(name="t", layers=[], tag="v1.2_rc-3", exposed_ports=["80", "8080/tcp", "53/udp", "65535"])',
    )
    assert image[OciImageTagField].value == "v1.2_rc-3"
    assert image[OciImageExposedPortsField].value == ("80", "8080/tcp", "53/udp", "65535")


def test_defaults_pass(rule_runner: RuleRunner) -> None:
    layer = _target(rule_runner, 'oci_layer(name="t", contents=[])')
    assert layer[OciLayerDestinationField].value == "/"
    assert layer[OciLayerOwnerField].value == "0:0"
    assert layer[OciLayerFileModeField].value is None
    image = _target(rule_runner, 'oci_image(name="t", layers=[])')
    assert image[OciImageTagField].value == "latest"
    assert image[OciImageArchitecturesField].value is None


@pytest.mark.parametrize(
    "given, expected",
    [
        (
            ["amd64", "arm64", "arm/v7", "arm/v6", "386", "ppc64le", "s390x", "riscv64"],
            ("x86_64", "aarch64", "armv7", "armhf", "x86", "ppc64le", "s390x", "riscv64"),
        ),
        (["x86_64", "aarch64", "armv7", "armhf", "x86"], ("x86_64", "aarch64", "armv7", "armhf", "x86")),
        (["arm64/v8", "amd64", "x86_64"], ("aarch64", "x86_64")),
    ],
)
def test_oci_architecture_names_are_accepted(rule_runner: RuleRunner, given: list, expected: tuple) -> None:
    image = _target(rule_runner, f'oci_image(name="t", layers=[], architectures={given!r})')
    assert image[OciImageArchitecturesField].value == expected
    layer = _target(rule_runner, f'apk_layer(name="t", lockfile="apko.lock.json", architectures={given!r})')
    assert layer[ApkArchitecturesField].value == expected


def test_apk_layer_lockfile_defaults_to_apko_lock_json(rule_runner: RuleRunner) -> None:
    layer = _target(rule_runner, 'apk_layer(name="t")')
    assert layer[ApkLockfileField].value == "apko.lock.json"
