"""Provision the tests' real servers, runtimes and toolchains on first use.

`./pants test ::` on a fresh machine must pass by itself, so a test that needs skopeo, podman,
dockerd, the registry, BuildGrid or the examples' compilers runs `build-support/install-test-deps`
first: once per machine (it is idempotent and quick when all is there, and serialises concurrent
runs with a file lock of its own).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

from testutil.paths import repo_root

_done = False


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pants-oci"


def bgd_default() -> Path:
    """Where install-test-deps puts BuildGrid's `bgd` (its own venv on CPython 3.11)."""
    return cache_dir() / "buildgrid" / "bin" / "bgd"


def pip_cert_args() -> List[str]:
    """`--cert BUNDLE` for pip: test runners pass a bare environment (Pants strips PIP_CERT), and
    networks that intercept TLS need the system CA bundle named."""
    cert = (
        os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    )
    return ["--cert", cert] if Path(cert).is_file() else []


def ensure_test_deps() -> None:
    """Run install-test-deps once per process; raise with its output when it cannot install."""
    global _done
    if _done:
        return
    script = repo_root() / "build-support" / "install-test-deps"
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{script} failed (exit {result.returncode}); run it by hand to see why:\n"
            + (result.stdout + result.stderr)[-3000:]
        )
    _done = True
