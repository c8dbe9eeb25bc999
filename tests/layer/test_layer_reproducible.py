"""Same lock => same bytes, whatever the folder, umask, timezone, locale, environment or output path."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ocibuild.apk.lockfile import dump_lockfile
from testutil.apk_layers import NONROOT, STATIC_SET, alpine_lock, run_apk_layer_cli

SRC = Path(__file__).resolve().parents[2] / "src" / "python"


def run_cli(workdir: Path, lockfile: Path, accounts: Path, umask: int, env_extra: dict) -> Path:
    workdir.mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(SRC), **env_extra}
    return run_apk_layer_cli(
        workdir / "deeper" / "out",
        lockfile,
        accounts,
        "--skip-scripts-of",
        "busybox",
        cwd=workdir,
        env=env,
        preexec_fn=lambda: os.umask(umask),
    )


def test_two_builds_in_different_surroundings_are_identical(tmp_path):
    lockfile = tmp_path / "apko.lock.json"
    lockfile.write_text(dump_lockfile(alpine_lock(STATIC_SET + ("busybox",))))
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(NONROOT))
    a = run_cli(
        tmp_path / "a",
        lockfile,
        accounts,
        0o022,
        {"TZ": "UTC", "LANG": "C", "HOME": str(tmp_path / "a"), "USER": "root"},
    )
    b = run_cli(
        tmp_path / "elsewhere" / "b",
        lockfile,
        accounts,
        0o077,
        {
            "TZ": "Pacific/Chatham",
            "LANG": "en_US.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": "/nonexistent",
            "USER": "someone",
            "PYTHONHASHSEED": "12345",
            "SOURCE_DATE_EPOCH": "1",
        },
    )
    assert (a / "layer.tar.gz").read_bytes() == (b / "layer.tar.gz").read_bytes()
    assert (a / "layer.json").read_bytes() == (b / "layer.json").read_bytes()
    # and it is not a degenerate output
    assert len(json.loads((a / "layer.json").read_text())["packages"]) == 7
    assert (a / "layer.tar.gz").stat().st_mode & 0o777 == (b / "layer.tar.gz").stat().st_mode & 0o777 == 0o644
