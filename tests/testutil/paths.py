"""Where the tests find data that lives outside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    """The read-only `shared/` folder beside the repository (see README)."""
    env = os.environ.get("OCIBUILD_SHARED_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent.parent / "shared"
        if (candidate / "apk-mirror").is_dir():
            return candidate
    raise RuntimeError("cannot find shared/: set OCIBUILD_SHARED_DIR to the folder holding apk-mirror/")


def apk_mirror() -> Path:
    return shared_dir() / "apk-mirror"


def repo_root() -> Path:
    env = os.environ.get("OCIBUILD_REPO_ROOT")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "pants.toml").is_file() and (parent / "pants").is_file():
            return parent
    raise RuntimeError("cannot find the repository: set OCIBUILD_REPO_ROOT")
