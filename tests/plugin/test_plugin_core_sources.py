"""Where the plugin reads the core library from: through the engine when the build root holds it
(so that pantsd notices a changed core file), else through importlib (an installed wheel)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from pants_oci.util_rules.ocibuild_process import _core_dir_in, _core_sources


def _core_root() -> Path:
    root = importlib.resources.files("ocibuild")
    assert isinstance(root, Path)
    return root.resolve()


def test_a_build_root_holding_the_core_gives_its_folder() -> None:
    core = _core_root()
    for ancestor in (core.parent, core.parent.parent):
        assert _core_dir_in(str(ancestor)) == core.relative_to(ancestor).as_posix()


def test_a_build_root_without_the_core_gives_none(tmp_path: Path) -> None:
    assert _core_dir_in(str(tmp_path)) is None


def test_the_importlib_fallback_reads_the_same_python_files() -> None:
    core = _core_root()
    on_disk = sorted(
        f"ocibuild/{p.relative_to(core).as_posix()}"
        for p in core.rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert [f.path for f in _core_sources()] == on_disk
