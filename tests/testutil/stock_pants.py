"""A stock Pants: a clean virtualenv with only `pantsbuild.pants==<version>` from PyPI.

Not the bootstrap venv of `./pants` (which carries the plugin's own pins): what a team that adopts
the plugin from its wheel would run. Cached under `~/.cache/pants-oci/stock-pants-<version>/`, so
later runs reuse it; `.complete` marks a usable one, and a lock keeps concurrent tests from
building it twice.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

PANTS_VERSION = "2.17.1"
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def cache_dir() -> Path:
    env = os.environ.get("PANTS_BOOTSTRAP_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "pants-oci"


def ca_bundle() -> Optional[str]:
    return next((b for b in CA_BUNDLES if os.path.isfile(b)), None)


def find_python39() -> str:
    candidates = [os.environ.get("PANTS_PYTHON", ""), "python3.9"]
    pyenv = Path(os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob("3.9*/bin/python3.9"))
    if sys.version_info[:2] == (3, 9):
        candidates.append(sys.executable)
    for candidate in candidates:
        path = shutil.which(candidate) if candidate else None
        if path is None:
            continue
        probe = [path, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 9))"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return path
    raise RuntimeError("no CPython 3.9 found for a stock Pants (set PANTS_PYTHON)")


def stock_pants(version: str = PANTS_VERSION) -> Path:
    """The `pants` executable of a clean venv holding only pantsbuild.pants==version (and its deps)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"stock-pants-{version}"
    pants = venv / "bin" / "pants"
    if (venv / ".complete").is_file():
        return pants
    with open(cache / ".stock-pants.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([find_python39(), "-m", "venv", str(venv)], check=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PANTS_"))}
            env["PIP_CONFIG_FILE"] = os.devnull
            bundle = ca_bundle()
            cert = [f"--cert={bundle}"] if bundle else []
            subprocess.run(
                [
                    str(venv / "bin" / "pip"),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *cert,
                    f"pantsbuild.pants=={version}",
                ],
                check=True,
                env=env,
            )
            (venv / ".complete").touch()
    return pants


if __name__ == "__main__":
    print(stock_pants())
