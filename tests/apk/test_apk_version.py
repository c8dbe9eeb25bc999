"""apk version ordering and dependency constraints (apk-tools 2.14 src/version.c rules)."""

from __future__ import annotations

import itertools
import tarfile

import pytest
from ocibuild.apk.version import (
    Dependency,
    compare_versions,
    is_valid_version,
    parse_dependency,
    version_sort_key,
)
from ocibuild.errors import OciBuildError
from testutil.paths import apk_mirror

# (smaller, larger) pairs: each rule of version.c, plus versions Alpine really ships.
ORDERED_PAIRS = [
    ("1.0", "1.1"),
    ("1.9", "1.10"),  # numeric, not lexical
    ("1.0", "1.0.1"),
    ("1.0_rc1", "1.0"),
    ("1.0_alpha", "1.0_beta"),
    ("1.0_beta2", "1.0_pre1"),
    ("1.0_pre1", "1.0_rc1"),
    ("1.0_rc1", "1.0_rc2"),
    ("1.0_rc9", "1.0_rc10"),
    ("1.0", "1.0_p1"),
    ("1.0_p1", "1.0_p2"),
    ("1.0_cvs1", "1.0_svn1"),
    ("1.0_svn1", "1.0_git1"),
    ("1.0_git1", "1.0_hg1"),
    ("1.0_hg1", "1.0_p1"),
    ("1.0-r1", "1.0-r2"),
    ("1.0-r9", "1.0-r10"),
    ("1.0", "1.0-r1"),
    ("1.0-r5", "1.0.1-r0"),
    ("1.2.3", "1.2.3a"),
    ("1.2.3a", "1.2.3b"),
    ("1.2.3z", "1.2.4"),
    ("2023c-r0", "2023d-r0"),
    ("2021a-r0", "2023c-r0"),
    ("1.2.4-r0", "1.2.4_git20230717-r4"),  # _git is a post-release suffix: musl's snapshot is after 1.2.4
    ("1.2.3_git20230424", "1.2.4_git20230717-r4"),
    ("6.4_p20231125-r0", "6.4_p20231126-r0"),
    ("6.4-r0", "6.4_p20231125-r0"),
    ("30_pre9-r1", "30-r0"),
    ("1.01", "1.1"),  # leading zero: string comparison ("01" < "1")
    ("1.001", "1.01"),
    ("1.0_rc1-r5", "1.0-r0"),
    ("8.4_p1-r3", "9.6_p1-r0"),
    ("20191231.3.1-r1", "20230828.3.1-r3"),
    ("1.1.1k-r0", "1.1.1l-r0"),
]

EQUAL_PAIRS = [
    ("1.0", "1.0"),
    ("1.0-r0", "1.0-r0"),
    ("1.2.4_git20230717-r4", "1.2.4_git20230717-r4"),
    ("2023d-r0", "2023d-r0"),
]


@pytest.mark.parametrize("small, large", ORDERED_PAIRS)
def test_ordered_pairs(small, large):
    assert is_valid_version(small) and is_valid_version(large)
    assert compare_versions(small, large) == -1
    assert compare_versions(large, small) == 1


@pytest.mark.parametrize("a, b", EQUAL_PAIRS)
def test_equal_pairs(a, b):
    assert compare_versions(a, b) == 0


@pytest.mark.parametrize(
    "v",
    [
        "1.2.4_git20230717-r4",
        "2023d-r0",
        "6.4_p20231125-r0",
        "30_pre9-r1",
        "1.1.1k-r0",
        "1.0_alpha_beta2",
        "0",
        "20191231.3.1-r1",
        "1.2.3a_rc1-r0",
        # apk 2.14's tokenizer is looser than its documented grammar; its `apk version -c` accepts
        # these too (tests/apk/test_apk_version_reference.py compares with the binary).
        "1.2a3",
        "0.99f7-r2",
        "1.1.0b1-r7",
        "",
        "a1",
        "v1.0",
        "1.0-r",
        "1..0",
        "1.0.",
        "1.0-r1-r2",
    ],
)
def test_valid_versions(v):
    assert is_valid_version(v)


@pytest.mark.parametrize(
    "v",
    [
        "1.0-",
        "1.0-rc1",
        "1.0_foo",
        "1.2.3ab",
        "1.0-r1_p1",
        "1.0 ",
        "1.0A",
        "1.0_p1a",
    ],
)
def test_invalid_versions(v):
    assert not is_valid_version(v)


def _real_versions():
    versions = set()
    for index in sorted((apk_mirror() / "alpine").glob("*/main/*/APKINDEX.tar.gz")):
        with tarfile.open(index) as tar:
            text = tar.extractfile("APKINDEX").read().decode()
        versions.update(line[2:] for line in text.splitlines() if line.startswith("V:"))
    return sorted(versions)


def test_real_versions_are_valid_and_totally_ordered():
    versions = _real_versions()
    assert len(versions) > 80
    assert all(is_valid_version(v) for v in versions)
    for a, b in itertools.combinations(versions, 2):
        # antisymmetric, and distinct spellings never compare equal
        assert compare_versions(a, b) == -compare_versions(b, a) != 0
    ordered = sorted(versions, key=version_sort_key)
    for a, b in itertools.combinations(ordered, 2):  # transitive: sorted order agrees with every pair
        assert compare_versions(a, b) == -1
    # Spot checks against the numeric meaning of the leading components.
    leading = [
        int(v.split(".")[0].split("_")[0].split("-")[0].rstrip("abcdefghijklmnopqrstuvwxyz")) for v in ordered
    ]
    assert leading == sorted(leading)


def test_revision_and_release_sort_like_apk_upgrade_would():
    versions = [
        "1.36.1-r15",
        "1.36.1-r2",
        "1.36.1",
        "1.36.1_p1-r0",
        "1.36.1_rc1-r9",
        "1.36.0-r30",
        "1.36.10-r0",
    ]
    assert sorted(versions, key=version_sort_key) == [
        "1.36.0-r30",
        "1.36.1_rc1-r9",
        "1.36.1",
        "1.36.1-r2",
        "1.36.1-r15",
        "1.36.1_p1-r0",
        "1.36.10-r0",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so:libc.musl-x86_64.so.1", Dependency("so:libc.musl-x86_64.so.1", None, None, False)),
        ("cmd:sh", Dependency("cmd:sh", None, None, False)),
        ("/bin/sh", Dependency("/bin/sh", None, None, False)),
        ("!foo", Dependency("foo", None, None, True)),
        ("!openssh-client-krb5", Dependency("openssh-client-krb5", None, None, True)),
        ("tzdata>=2023c", Dependency("tzdata", ">=", "2023c", False)),
        ("foo~1.2", Dependency("foo", "~", "1.2", False)),
        ("foo=~1.2", Dependency("foo", "~", "1.2", False)),
        ("foo=1.2-r0", Dependency("foo", "=", "1.2-r0", False)),
        ("foo<2", Dependency("foo", "<", "2", False)),
        ("foo<=2", Dependency("foo", "<=", "2", False)),
        ("foo>2", Dependency("foo", ">", "2", False)),
        ("!musl<1.2", Dependency("musl", "<", "1.2", True)),
        ("cmd:sh=1.36.1-r15", Dependency("cmd:sh", "=", "1.36.1-r15", False)),
        ("so:libz.so.1=1.3.1", Dependency("so:libz.so.1", "=", "1.3.1", False)),
        ("musl>=1.2.3_git20230424", Dependency("musl", ">=", "1.2.3_git20230424", False)),
        ("foo@edge", Dependency("foo", None, None, False, tag="edge")),
        ("foo><Q1abc=", Dependency("foo", "><", "Q1abc=", False)),
        ("foo<~3.6", Dependency("foo", "<~", "3.6", False)),
        ("foo>~3.6", Dependency("foo", ">~", "3.6", False)),
        ("foo=>>1", Dependency("foo", ">=", "1", False)),  # apk ORs the operator characters
    ],
)
def test_parse_dependency(text, expected):
    dep = parse_dependency(text)
    assert dep == expected
    if text not in ("foo=~1.2", "foo=>>1"):
        assert str(dep) == text


@pytest.mark.parametrize("text", ["", "!", ">=1.0", "foo>=", "foo>=not-a-version", "foo<>=1", "foo@", "a b"])
def test_bad_dependencies(text):
    with pytest.raises(OciBuildError, match=r"^APKINDEX line 3: invalid dependency"):
        parse_dependency(text, origin="APKINDEX line 3")


@pytest.mark.parametrize(
    "dep, version, matches",
    [
        ("tzdata>=2023c", "2023d-r0", True),
        ("tzdata>=2023c", "2023c-r0", True),
        ("tzdata>=2023c", "2023c", True),
        ("tzdata>=2023c", "2023b-r5", False),
        ("tzdata>2023c", "2023c", False),
        ("foo=1.2-r0", "1.2-r0", True),
        ("foo=1.2-r0", "1.2-r1", False),
        ("foo=1.2", "1.2-r0", False),  # exact: -r0 is a further component
        ("foo<1.0", "1.0_rc1", True),
        ("foo<=1.0", "1.0", True),
        ("foo<=1.0", "1.0-r1", False),
        ("foo~1.2", "1.2.3-r0", True),  # fuzzy: prefix match
        ("foo~1.2", "1.2-r7", True),
        ("foo~1.2", "1.20-r0", False),
        ("foo~1.2", "1.3-r0", False),
        ("foo~1.2", "1.1", False),
        ("foo", "0.0.1", True),
        ("!foo<2", "1.0", True),  # the conflict flag is the resolver's to apply
    ],
)
def test_matches_version(dep, version, matches):
    assert parse_dependency(dep).matches_version(version) is matches
