"""The `./pants` bootstrap script: venv reuse keyed by the pins, and its error without CPython 3.9."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_FILES = ("pants", "3rdparty/python/bootstrap.txt")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in REPO_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(name, root / name)
    return root


def venv_key(root: Path) -> str:
    data = (root / "3rdparty/python/bootstrap.txt").read_bytes() + (root / "pants").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def run(root: Path, cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        "HOME": str(cache.parent),
        "PATH": "/usr/bin:/bin",
        "PANTS_BOOTSTRAP_CACHE": str(cache),
        "PANTS_PYTHON": "/nonexistent/python3.9",
        **env,
    }
    return subprocess.run(
        ["bash", str(root / "pants"), *args], env=environ, capture_output=True, text=True, timeout=60
    )


def fake_venv(cache: Path, key: str) -> None:
    """A ready venv whose `pants` prints what it was started with."""
    bin_dir = cache / f"venv-{key}" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pants").write_text('#!/bin/sh\necho "args=$*"\necho "pex=$PANTS_PEX_CLI_URL_TEMPLATE"\n')
    (bin_dir / "pants").chmod(0o755)
    (cache / f"venv-{key}" / ".complete").touch()


def test_ready_venv_is_reused_without_python(checkout: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fake_venv(cache, venv_key(checkout))
    result = run(checkout, cache, "--version", "x y")
    assert result.returncode == 0, result.stderr
    assert "args=--version x y" in result.stdout
    assert f"pex=file://{cache}/pex-2.1.137.pex" in result.stdout
    assert result.stderr == ""


def test_changed_pins_need_a_new_venv(checkout: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fake_venv(cache, venv_key(checkout))
    with open(checkout / "3rdparty/python/bootstrap.txt", "a") as f:
        f.write("# changed\n")
    result = run(checkout, cache, "--version")
    # The old venv is not used: setup starts and needs a Python, which this environment lacks.
    assert result.returncode == 1
    assert "args=" not in result.stdout
    assert "no CPython 3.9 found" in result.stderr


def test_missing_python_says_how_to_get_one(checkout: Path, tmp_path: Path) -> None:
    result = run(checkout, tmp_path / "cache", "--version")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PANTS_PYTHON" in lines[0] and "pyenv install 3.9" in lines[0]
    assert not any(p.name.startswith("venv-") for p in (tmp_path / "cache").iterdir())
