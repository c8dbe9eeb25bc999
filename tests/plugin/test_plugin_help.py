"""Every target's help shows a BUILD example, and field helps state what the code does."""

from __future__ import annotations

import pytest
from pants_oci import register
from pants_oci.target_types import OciImageCmdField, OciImageEntrypointField


@pytest.mark.parametrize("target", register.target_types(), ids=lambda t: t.alias)
def test_every_target_has_an_example(target) -> None:
    assert "Example" in target.help and f"{target.alias}(" in target.help


def test_entrypoint_help_says_it_drops_the_base_cmd() -> None:
    # What ocibuild.oci.config.merge_runtime_config does; tests/oci/test_oci_base.py checks it.
    assert "drops the base's `cmd`" in " ".join(OciImageEntrypointField.help.split())
    assert "dropped when only `entrypoint` is set" in " ".join(OciImageCmdField.help.split())
