"""The resolver against apk-tools 2.14's solver: the same packages for the same spec and index.

A synthetic signed index shaped like Alpine's (so:/pc:/cmd: provides, versioned dependencies, a
second build of some names, conflicts) and specs of increasing size; apk answers with
`add --simulate`, which reads and verifies the index and solves without installing.
"""

from __future__ import annotations

import platform
import re
import subprocess

import pytest
from ocibuild.apk.index import load_index
from ocibuild.apk.resolve import resolve
from ocibuild.apk.signing import Keyring
from ocibuild.errors import OciBuildError
from testutil.apkbuild import TEST_KEY, build_index, write_keys
from testutil.paths import shared_dir
from testutil.synthetic_index import ARCH, generate_index_text

INSTALLING = re.compile(r"^\(\d+/\d+\) Installing (\S+) \((\S+)\)$", re.MULTILINE)


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    if platform.machine() != "x86_64":
        pytest.skip("the reference apk binary is Alpine's x86_64 build")
    work = tmp_path_factory.mktemp("synthetic")
    text, spec = generate_index_text(4000, seed=19)
    (work / "repo" / ARCH).mkdir(parents=True)
    index_path = work / "repo" / ARCH / "APKINDEX.tar.gz"
    index_path.write_bytes(build_index([], TEST_KEY, "synthetic", apkindex_text=text))
    keys = write_keys(work / "keys", TEST_KEY)
    root = work / "root"
    root.mkdir()
    apk = [str(shared_dir() / "apk-reference" / "apk"), "--root", str(root), "--keys-dir", str(keys)]
    apk += ["--repository", str(work / "repo"), "--no-cache", "--arch", ARCH]
    subprocess.run([*apk, "--initdb", "add"], check=True, capture_output=True, timeout=120)
    index = load_index(index_path.read_bytes(), Keyring.from_dir(keys), str(index_path))
    return apk, index, spec


SPECS = [(start, size) for size in (1, 3, 8, 20) for start in range(0, 50 - size, 7)]


def test_same_packages_as_apk_or_both_refuse(repository) -> None:
    apk, index, spec = repository
    solved = refused = 0
    for start, size in SPECS:
        requests = spec[start : start + size]
        answer = subprocess.run(
            [*apk, "add", "--simulate", *requests], capture_output=True, text=True, timeout=300
        )
        if answer.returncode != 0:
            assert "unable to select packages" in answer.stderr, answer.stderr
            with pytest.raises(OciBuildError):
                resolve([index], requests, ARCH)
            refused += 1
            continue
        theirs = sorted(INSTALLING.findall(answer.stdout))
        ours = sorted((e.name, e.version) for e in resolve([index], requests, ARCH))
        assert ours == theirs, requests
        solved += 1
    assert solved >= 10 and refused >= 1  # both outcomes are exercised
