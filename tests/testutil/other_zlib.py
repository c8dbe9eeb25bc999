"""A second zlib for `LD_PRELOAD`: zlib-ng built in zlib-compatible mode from its PyPI sdist.

CPython's `zlib` module calls the system `libz.so.1`, so the gzip bytes it writes (and so a layer's
and an image's digest) are whatever that library's deflate produces. zlib-ng's compat build exports
the same ABI (`libz.so.1`, `deflateInit2_`, ...) but its deflate picks other matches, so under
`LD_PRELOAD=<this .so>` Python's `zlib.compress` gives other bytes for the same input. A test can
then assert that a build's digest does not change when the system zlib does.

Recipe (what `other_zlib_preload()` does, cached under ~/.cache/pants-oci/other-zlib/):
  1. `python -m venv` (ensurepip, offline) and `pip download --no-deps --no-binary :all:
     zlib-ng==1.1.0`: the python-zlib-ng sdist, which vendors the zlib-ng C sources (2.3.3);
     checked against its sha256 below.
  2. `cmake -S src/zlib_ng/zlib-ng -DZLIB_COMPAT=ON -DBUILD_SHARED_LIBS=ON -DZLIB_ENABLE_TESTS=OFF
     -DWITH_GTEST=OFF -DCMAKE_BUILD_TYPE=Release`, then `cmake --build` (about a minute on 2 cores).
  3. The result is `libz.so.1` (zlibVersion() == "1.3.1.zlib-ng").
Needs cc, cmake and make (Debian: build-essential cmake); without them it returns None.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

from testutil.provision import cache_dir, pip_cert_args, run_or_raise

SDIST_REQUIREMENT = "zlib-ng==1.1.0"
SDIST_NAME = "zlib_ng-1.1.0.tar.gz"
SDIST_SHA256 = "08a3a8468d4f130e3dc80d28ec42fcc7a878a57dfed616233e791066327d78a3"
SOURCE_SUBDIR = "zlib_ng-1.1.0/src/zlib_ng/zlib-ng"
EXPECTED_VERSION = "1.3.1.zlib-ng"


def _run(argv, cwd: Optional[Path] = None) -> None:
    # PIP_CERT reaches pip's build-dependency subprocess too, which `--cert` does not.
    env = dict(os.environ)
    cert = pip_cert_args()
    if cert:
        env["PIP_CERT"] = cert[1]
    run_or_raise(argv, cwd=cwd, env=env)


def _download_sdist(work: Path) -> Path:
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(work),
            SDIST_REQUIREMENT,
        ]
    )
    sdist = work / SDIST_NAME
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(
            f"{SDIST_NAME} has sha256 {digest}, expected {SDIST_SHA256}: PyPI served another file"
        )
    return sdist


def _build(dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="other-zlib-", dir=dest.parent) as tmp:
        work = Path(tmp)
        with tarfile.open(_download_sdist(work)) as sdist:
            sdist.extractall(work)
        build = work / "build"
        _run(
            [
                "cmake",
                "-S",
                str(work / SOURCE_SUBDIR),
                "-B",
                str(build),
                "-DZLIB_COMPAT=ON",
                "-DBUILD_SHARED_LIBS=ON",
                "-DZLIB_ENABLE_TESTS=OFF",
                "-DWITH_GTEST=OFF",
                "-DCMAKE_BUILD_TYPE=Release",
            ]
        )
        _run(["cmake", "--build", str(build), f"-j{os.cpu_count() or 2}"])
        built = (build / "libz.so.1").resolve()
        staged = work / "libz.so.1"
        shutil.copy2(built, staged)
        os.replace(staged, dest)  # atomic: a concurrent caller sees all of it or none


def other_zlib_preload() -> Optional[Path]:
    """The path of a zlib-ng compat `libz.so.1` to put in `LD_PRELOAD`, built once; None without a
    C toolchain (cc, cmake, make) or off Linux."""
    if not sys.platform.startswith("linux") or not all(shutil.which(t) for t in ("cc", "cmake", "make")):
        return None
    dest = cache_dir() / "other-zlib" / f"zlib-ng-{EXPECTED_VERSION}" / "libz.so.1"
    if not dest.exists():
        _build(dest)
    return dest


def zlib_runtime_version(preload: Optional[Path] = None) -> str:
    """`zlib.ZLIB_RUNTIME_VERSION` of this interpreter, with `preload` in LD_PRELOAD if given."""
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = str(preload)
    return subprocess.run(
        [sys.executable, "-c", "import zlib; print(zlib.ZLIB_RUNTIME_VERSION)"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
