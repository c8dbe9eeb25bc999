"""Versions against the reference: apk-tools' own test vectors and Alpine's apk 2.14.0 binary.

`version-2.14.data` is what apk-tools 2.14 tests itself with; `version-3.data` adds fuzzy matches
and validity lines written for apk 3, whose grammar is stricter: there the 2.14 binary, not the
file, is the expectation. Generated strings (valid, odd and invalid) are compared with
`apk version -t` (ordering) and `apk version -c` (validity).
"""

from __future__ import annotations

import gzip
import platform
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

import pytest
from ocibuild.apk.version import compare_versions, is_valid_version, parse_dependency
from testutil.paths import shared_dir
from testutil.tars import tar_of

REFERENCE = shared_dir() / "apk-reference"
SIGN = {-1: "<", 0: "=", 1: ">"}


def _data_lines(name: str) -> Iterator[List[str]]:
    for line in (REFERENCE / name).read_text().splitlines():
        words = line.split("#")[0].split()
        if words:
            yield words


@pytest.fixture(scope="module")
def apk() -> Path:
    if platform.machine() != "x86_64":
        pytest.skip("the reference apk binary is Alpine's x86_64 build")
    binary = REFERENCE / "apk"
    subprocess.run([str(binary), "--version"], check=True, capture_output=True, timeout=120)
    return binary


def _apk_compare(apk: Path, pairs: Sequence[Tuple[str, str]]) -> List[str]:
    def one(pair: Tuple[str, str]) -> str:
        out = subprocess.run(
            [str(apk), "version", "-t", *pair], capture_output=True, text=True, timeout=60, check=True
        )
        return out.stdout.strip()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, pairs))


def _apk_invalid(apk: Path, versions: Sequence[str]) -> set:
    """`apk version -c` prints the invalid ones among its arguments."""
    invalid = set()
    for start in range(0, len(versions), 200):
        chunk = list(versions[start : start + 200])
        out = subprocess.run(
            [str(apk), "version", "-c", "--", *chunk], capture_output=True, text=True, timeout=60
        )
        invalid.update(out.stdout.splitlines())
    return invalid


def test_every_line_of_apk_214_version_data() -> None:
    lines = list(_data_lines("version-2.14.data"))
    assert len(lines) == 733
    wrong = [
        (a, op, b, SIGN[compare_versions(a, b)])
        for a, op, b, *_ in lines
        if SIGN[compare_versions(a, b)] != op
    ]
    assert not wrong


def test_letters_followed_by_digits_are_valid_as_in_apk_214() -> None:
    # Real Alpine versions (aspell-ru in main, librasterlite2 in community) that apk 3 would refuse.
    for v in ("0.99f7-r2", "1.1.0b1-r7", "1.2a3"):
        assert is_valid_version(v)
    assert compare_versions("0.99f7-r2", "0.99f8-r0") == -1
    assert compare_versions("1.1.0b1-r7", "1.1.0-r7") == 1


def _generated_versions(count: int, seed: int = 2014) -> List[str]:
    """Version-like strings: mostly apk's grammar, with odd and invalid pieces mixed in."""
    rng = random.Random(seed)
    pieces = [
        lambda: str(rng.randint(0, 30)),
        lambda: "0" * rng.randint(1, 3) + str(rng.randint(0, 9)),
        lambda: "." + str(rng.randint(0, 12)),
        lambda: "." + "0" * rng.randint(1, 2) + str(rng.randint(0, 9)),
        lambda: rng.choice("abcfxz"),
        lambda: rng.choice("abcfxz") + str(rng.randint(0, 9)),
        lambda: "_" + rng.choice(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]),
        lambda: "_" + rng.choice(["alpha", "rc", "git", "p"]) + str(rng.randint(0, 20)),
        lambda: "-r" + str(rng.randint(0, 12)),
        lambda: rng.choice(["_foo", "-", ".", "_", "-x", "A", "~1", "..", "1" * 19, "-r", "__p"]),
    ]
    weights = [6, 1, 6, 1, 2, 1, 2, 2, 3, 1]
    out = []
    for _ in range(count):
        text = str(rng.randint(0, 9))
        for _ in range(rng.randint(0, 5)):
            text += rng.choices(pieces, weights)[0]()
        out.append(text)
    return out


def test_validity_agrees_with_apk(apk: Path) -> None:
    versions = sorted(
        set(_generated_versions(1500))
        | {w[0].lstrip("!") for w in _data_lines("version-3.data") if len(w) == 1}
        | {v for w in _data_lines("version-2.14.data") for v in (w[0], w[2])}
        | {"", "a", "1.", "1.a", "1.0_", "abc"}
    )
    versions = [v for v in versions if v and not v.startswith("-")]  # not apk options
    invalid = _apk_invalid(apk, versions)
    assert 50 < len(invalid) < len(versions) - 50  # both kinds are well represented
    assert {v for v in versions if not is_valid_version(v)} == invalid


def test_ordering_agrees_with_apk(apk: Path) -> None:
    rng = random.Random(3)
    versions = _generated_versions(400, seed=7)
    pairs = [(rng.choice(versions), rng.choice(versions)) for _ in range(500)]
    # Near misses matter most: pairs sharing a prefix.
    pairs += [(v, v + p) for v in versions[:100] for p in (rng.choice(["_rc1", "-r1", "a", ".0", "_p"]),)]
    pairs += [
        (w[0], w[2]) for w in _data_lines("version-3.data") if len(w) >= 3 and w[1].lstrip("!") in "<=>"
    ]
    pairs = [(a, b) for a, b in pairs if not a.startswith("-") and not b.startswith("-")]
    expected = _apk_compare(apk, pairs)
    wrong = [
        (a, b, e, SIGN[compare_versions(a, b)])
        for (a, b), e in zip(pairs, expected)
        if SIGN[compare_versions(a, b)] != e
    ]
    assert not wrong


def _index_with(versions: Sequence[str]) -> bytes:
    """An unsigned APKINDEX.tar.gz with package `p<i>` at each version (for `add --simulate`)."""
    text = "".join(
        f"C:Q1{i:03d}{'A' * 24}=\nP:p{i}\nV:{v}\nA:x86_64\nS:1\nI:1\nT:t\nU:u\nL:MIT\n\n"
        for i, v in enumerate(versions)
    )
    return gzip.compress(tar_of({"DESCRIPTION": b"fuzzy", "APKINDEX": text.encode()}), mtime=0)


def test_fuzzy_and_operator_matches_agree_with_apk(apk: Path, tmp_path: Path) -> None:
    """`p~3.6` etc., asked of apk's solver: satisfiable exactly when our matches_version says so."""
    cases = []
    for words in _data_lines("version-3.data"):
        if len(words) >= 3 and "~" in words[1]:
            cases.append((words[0], words[1].lstrip("!"), words[2]))
    rng = random.Random(11)
    versions = [v for v in _generated_versions(200, seed=5) if is_valid_version(v)]
    for _ in range(40):
        cases.append(
            (rng.choice(versions), rng.choice(["~", "<~", ">~", "<", ">=", "="]), rng.choice(versions))
        )
    repo = tmp_path / "repo"
    (repo / "x86_64").mkdir(parents=True)
    (repo / "x86_64" / "APKINDEX.tar.gz").write_bytes(_index_with([c[0] for c in cases]))

    root = tmp_path / "root"
    root.mkdir()
    common = [str(apk), "--root", str(root), "--no-cache", "--allow-untrusted", "--arch", "x86_64"]
    common += ["--repository", str(repo)]
    subprocess.run([*common, "--initdb", "add"], check=True, capture_output=True, timeout=60)

    def satisfiable(i: int) -> bool:
        pkg, op, dep = cases[i]
        add = [*common, "--quiet", "add", "--simulate", f"p{i}{op}{dep}"]
        return subprocess.run(add, capture_output=True, timeout=60).returncode == 0

    expected = [satisfiable(i) for i in range(len(cases))]
    assert any(expected) and not all(expected)
    wrong = [
        (case, want)
        for case, want in zip(cases, expected)
        if parse_dependency(f"p{case[1]}{case[2]}").matches_version(case[0]) is not want
    ]
    assert not wrong
