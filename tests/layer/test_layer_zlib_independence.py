"""Layer bytes do not depend on the system zlib, and multi-member layers read back everywhere.

The layer writer compresses with the pinned libdeflate (ocibuild.common.compression). Proof: the
`apk-layer` CLI run in a subprocess with and without `LD_PRELOAD` of another zlib (zlib-ng's compat
libz.so.1, tests/testutil/other_zlib.py) writes the same bytes, while the interpreter's own `zlib`
gives other bytes under that preload (so the preload really took effect).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from ocibuild.apk.archive import split_gzip_members
from ocibuild.apk.lockfile import dump_lockfile
from ocibuild.common.compression import (
    GZIP_MEMBER_BLOCK,
    GZIP_RELEASES_GIL,
    gzip_member,
    gzip_member_via_python_api,
)
from ocibuild.layer.tarball import FILE, TarEntry, write_layer
from ocibuild.oci.layers import inspect_layer
from testutil.apk_layers import NONROOT, STATIC_SET, alpine_lock, run_apk_layer_cli
from testutil.other_zlib import EXPECTED_VERSION, other_zlib_preload, zlib_runtime_version
from testutil.provision import ensure_test_deps

SRC = Path(__file__).resolve().parents[2] / "src" / "python"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def _preload() -> Path:
    ensure_test_deps()  # cc, cmake, make
    preload = other_zlib_preload()
    assert preload is not None, "no C toolchain to build the second zlib (cc, cmake, make)"
    assert zlib_runtime_version(preload) == EXPECTED_VERSION
    return preload


def _env(preload: Optional[Path]) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(SRC)}
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    return env


def _apk_layer(workdir: Path, lockfile: Path, accounts: Path, preload: Optional[Path]) -> bytes:
    out = run_apk_layer_cli(workdir / "out", lockfile, accounts, cwd=workdir, env=_env(preload))
    return (out / "layer.tar.gz").read_bytes()


def _stdlib_gzip_sha(data: bytes, preload: Optional[Path]) -> str:
    code = (
        "import hashlib, sys, zlib; c = zlib.compressobj(6, zlib.DEFLATED, -15);"
        "print(hashlib.sha256(c.compress(sys.stdin.buffer.read()) + c.flush()).hexdigest())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], input=data, env=_env(preload), check=True, capture_output=True
    ).stdout.decode()


def test_layer_bytes_are_the_same_under_another_system_zlib(tmp_path):
    preload = _preload()
    lockfile = tmp_path / "apko.lock.json"
    lockfile.write_text(dump_lockfile(alpine_lock(STATIC_SET)))
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(NONROOT))

    system = _apk_layer(tmp_path / "system-zlib", lockfile, accounts, None)
    other = _apk_layer(tmp_path / "zlib-ng", lockfile, accounts, preload)

    assert hashlib.sha256(system).hexdigest() == hashlib.sha256(other).hexdigest()
    tar = gzip.decompress(system)
    # The interpreter's zlib does follow the preload: a layer compressed with it would change digest.
    assert _stdlib_gzip_sha(tar, None) != _stdlib_gzip_sha(tar, preload)


def test_a_layer_of_several_gzip_members_reads_back_whole(tmp_path):
    # Incompressible content just over one member block: the blob is two gzip members.
    content = b"".join(
        hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(GZIP_MEMBER_BLOCK // 32 + 4096)
    )
    entries = [
        TarEntry("data/blob", FILE, 0o644, content=content),
        TarEntry("data/small", FILE, 0o644, content=b"x"),
    ]
    blob_path = tmp_path / "layer.tar.gz"
    blob = write_layer(entries, str(blob_path), mtime=0)
    data = blob_path.read_bytes()

    assert len(split_gzip_members(data, str(blob_path))) == 2
    tar = gzip.decompress(data)
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == blob.diff_id
    facts = inspect_layer(blob_path, LAYER_MEDIA_TYPE)  # the image builder's streaming reader
    assert facts.diff_id == blob.diff_id
    assert facts.descriptor.digest == blob.digest
    # GNU gzip, as a runtime's decompressor would: every member, one tar.
    unzipped = subprocess.run(["gzip", "-dc"], input=data, check=True, capture_output=True).stdout
    assert unzipped == tar
    # Written again, byte for byte the same.
    again = write_layer(entries, str(tmp_path / "again.tar.gz"), mtime=0)
    assert again == blob


@pytest.mark.skipif(sys.platform != "linux", reason="the Linux wheel exports libdeflate's symbols")
@pytest.mark.parametrize("level", [1, 6, 9, 12])
def test_gzip_members_are_the_same_bytes_through_ctypes_and_the_python_api(level):
    # The writer calls libdeflate through ctypes (without the GIL); the wheel's Python API is the
    # fallback: both are the same libdeflate, so a layer's digest cannot depend on which one ran.
    assert GZIP_RELEASES_GIL, "libdeflate's C API was not found in the deflate wheel"
    rng = random.Random(level)
    words = [bytes(rng.choice(b"abcdefgh/.-_") for _ in range(rng.randint(1, 12))) for _ in range(300)]
    text = b" ".join(rng.choice(words) for _ in range(60_000))
    for block in (b"", b"x", text[:1000], text, rng.randbytes(70_000), bytes(GZIP_MEMBER_BLOCK)):
        ours = gzip_member(block, level)
        assert ours == gzip_member_via_python_api(block, level)
        assert gzip.decompress(ours) == block
