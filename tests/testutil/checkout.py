"""Fresh checkouts of this repository in temporary folders, and `./pants` runs inside them.

Used by the end-to-end tests: each checkout is a copy of the tracked files at a different path,
beside a link to the real `shared/` folder (as in CI), sharing only the bootstrap venv cache.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Dict, Optional, Sequence

from testutil.paths import repo_root, shared_dir
from testutil.provision import ensure_test_deps


def tracked_files(root: Path) -> Sequence[str]:
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout
    return sorted(p for p in out.decode().split("\0") if p and (root / p).is_file())


def make_checkout(parent: Path, name: str = "repo") -> Path:
    """Copy the repository's files (as git sees them, committed or not) to `parent/name`.

    The checkout builds the examples, so the toolchains they need are installed first.
    """
    ensure_test_deps()
    root = repo_root()
    dest = parent / name
    for rel in tracked_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if not (parent / "shared").exists():
        (parent / "shared").symlink_to(shared_dir())
    return dest


def copy_checkout(checkout: Path, parent: Path, name: str = "repo") -> Path:
    """A second machine's checkout: `checkout`'s files at `parent/name`, beside its own `shared` link.

    Copied from a checkout, not from this working tree, so that edits meanwhile cannot make two differ.
    """
    dest = parent / name
    shutil.copytree(checkout, dest, symlinks=True)
    if not (parent / "shared").exists():
        (parent / "shared").symlink_to(shared_dir())
    return dest


def run_pants(
    checkout: Path,
    *args: str,
    store: Optional[Path] = None,
    extra_env: Optional[Dict[str, str]] = None,
    timeout: float = 1200,
    pantsd: bool = False,
) -> subprocess.CompletedProcess:
    """`./pants --no-pantsd ...` in `checkout` (with pantsd if asked), with its own local store when
    `store` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}
    env.update(extra_env or {})
    options = [
        "--pantsd" if pantsd else "--no-pantsd",
        "--no-dynamic-ui",
        "--stats-log",
        "--stats-memory-summary=false",
    ]
    if store:
        options.append(f"--local-store-dir={store}")
    return subprocess.run(
        ["./pants", *options, *args], cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout
    )


def counter(output: str, name: str) -> int:
    """A counter from Pants' `[stats].log` output, e.g. `local_execution_requests`."""
    match = re.search(rf"^\s*{re.escape(name)}: (\d+)\s*$", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


def stop_pantsd(checkout: Path) -> None:
    """Stop the pantsd that `./pants` runs started in `checkout` (by its pid file under .pids/)."""
    for pid_file in checkout.glob(".pids/*/pantsd/pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
