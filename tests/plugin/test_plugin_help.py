"""Every target's help shows a BUILD example, and field helps state what the code does."""

from __future__ import annotations

from typing import Callable, Union

import pytest
from pants_oci import register
from pants_oci.target_types import OciImageCmdField, OciImageEntrypointField


def _text(help: Union[str, Callable[[], str]]) -> str:
    return " ".join((help if isinstance(help, str) else help()).split())


@pytest.mark.parametrize("target", register.target_types(), ids=lambda t: t.alias)
def test_every_target_has_an_example(target) -> None:
    assert "Example" in _text(target.help) and f"{target.alias}(" in _text(target.help)


def test_entrypoint_help_says_it_drops_the_base_cmd() -> None:
    # What ocibuild.oci.config.merge_runtime_config does; tests/oci/test_oci_base.py checks it.
    assert "drops the base's `cmd`" in _text(OciImageEntrypointField.help)
    assert "dropped when only `entrypoint` is set" in _text(OciImageCmdField.help)
