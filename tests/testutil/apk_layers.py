"""Helpers of the APK layer tests (tests/layer): locks of real Alpine 3.19 packages from the offline
mirror, or of fixture packages made with testutil.apkbuild, both locked by the real locker
(ocibuild.apk.locker); reading a layer back."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ocibuild.apk.fetch import Fetcher, Mirrors, file_url
from ocibuild.apk.locker import lock
from ocibuild.apk.lockfile import Lockfile
from ocibuild.apk.spec import ImageContentsSpec
from ocibuild.layer.apk_layer import ApkLayerDescriptor, ApkLayerOptions, build_apk_layer
from testutil.apkbuild import TEST_KEY, apk_filename, write_keys, write_repository
from testutil.paths import apk_mirror
from testutil.tars import member_bytes

ALPINE_REPO = "https://dl-cdn.alpinelinux.org/alpine/v3.19/main"
ALPINE_KEY = "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"
STATIC_SET = ("alpine-baselayout-data", "ca-certificates-bundle", "tzdata", "alpine-release")
FIXTURE_REPO = "https://packages.example.com/test"
NONROOT = {
    "users": [{"username": "nonroot", "uid": 65532, "gid": 65532}],
    "groups": [{"groupname": "nonroot", "gid": 65532, "members": ["nonroot"]}],
}


def alpine_packages_dir() -> Path:
    return apk_mirror() / "alpine" / "v3.19" / "main" / "x86_64"


def lock_alpine(packages: Sequence[str]) -> Lockfile:
    """A real lock of Alpine 3.19 x86_64 packages, resolved from the mirror's signed index."""
    spec = ImageContentsSpec(
        repositories=(ALPINE_REPO,), keyring=(ALPINE_KEY,), packages=tuple(packages), archs=("x86_64",)
    )
    mirrors = Mirrors({"https://dl-cdn.alpinelinux.org/alpine/": [file_url(str(apk_mirror() / "alpine"))]})
    return lock(spec, repr(spec).encode(), "alpine-test", Fetcher(mirrors), str(apk_mirror() / "keys"))


_ALPINE_LOCKS: Dict[Tuple[str, ...], Lockfile] = {}


def alpine_lock(names: Sequence[str]) -> Lockfile:
    """`lock_alpine`, cached for the process (locking verifies every package)."""
    key = tuple(names)
    if key not in _ALPINE_LOCKS:
        _ALPINE_LOCKS[key] = lock_alpine(key)
    return _ALPINE_LOCKS[key]


def lock_fixtures(
    tmp_path: Path, apks: Sequence[bytes], requests: Optional[Sequence[str]] = None
) -> Tuple[Lockfile, Path]:
    """Lock fixture packages (all of them, or `requests`) from a signed test repository."""
    repo = tmp_path / "repo"
    arch_dir = write_repository(repo / "x86_64", apks)
    keys = write_keys(tmp_path / "keys", TEST_KEY)
    names = requests or [apk_filename(a).rsplit("-", 2)[0] for a in apks]
    spec = ImageContentsSpec(
        repositories=(FIXTURE_REPO,), keyring=(TEST_KEY.name,), packages=tuple(names), archs=("x86_64",)
    )
    mirrors = Mirrors({FIXTURE_REPO + "/": [file_url(str(repo))]})
    return lock(spec, repr(spec).encode(), "fixture", Fetcher(mirrors), str(keys)), arch_dir


def build_fixture_layer(tmp_path: Path, apks: Sequence[bytes], **options) -> Tuple[ApkLayerDescriptor, Path]:
    lockfile, packages_dir = lock_fixtures(tmp_path, apks)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    descriptor = build_apk_layer(
        lockfile,
        str(packages_dir),
        ApkLayerOptions(arch="x86_64", **options),
        str(out / "layer.tar.gz"),
        str(out / "layer.json"),
    )
    return descriptor, out / "layer.tar.gz"


def layer_members(path: Path) -> Dict[str, Tuple[tarfile.TarInfo, Optional[bytes]]]:
    """{name: (member, content of regular files and hard links)} read back with Python's tarfile."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(path.read_bytes())), mode="r:") as tar:
        for m in tar.getmembers():
            out[m.name] = (m, member_bytes(tar, m) if m.isfile() or m.islnk() else None)
    return out


def parse_installed(text: str) -> List[List[Tuple[str, str]]]:
    """lib/apk/db/installed as blocks of (key, value) lines."""
    blocks = []
    for block in text.split("\n\n"):
        if block.strip():
            blocks.append([(line[0], line[2:]) for line in block.splitlines()])
    return blocks


def run_apk_layer_cli(
    out: Path, lockfile: Path, accounts: Path, *extra: str, cwd: Path, env: Dict[str, str], **popen
) -> Path:
    """`python -m ocibuild apk-layer` for x86_64 from the Alpine slice, in a subprocess (a bare `env`,
    its own `cwd`); writes `out/layer.tar.gz` and `out/layer.json` and returns `out`."""
    out.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ocibuild",
            "apk-layer",
            "--lockfile",
            str(lockfile),
            "--arch",
            "x86_64",
            "--packages-dir",
            str(alpine_packages_dir()),
            "--accounts",
            str(accounts),
            *extra,
            "--output-layer",
            str(out / "layer.tar.gz"),
            "--output-descriptor",
            str(out / "layer.json"),
        ],
        cwd=str(cwd),
        env=env,
        check=True,
        capture_output=True,
        **popen,
    )
    return out
