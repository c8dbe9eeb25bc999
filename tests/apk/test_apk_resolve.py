from __future__ import annotations

from typing import List, Sequence, Set

import pytest
from ocibuild.apk.index import ApkIndex, IndexEntry, load_index
from ocibuild.apk.resolve import resolve
from ocibuild.apk.signing import Keyring
from ocibuild.errors import OciBuildError
from testutil.apk_oracle import expected_install_order
from testutil.apkbuild import build_apk, build_index, keyring_pems
from testutil.paths import apk_mirror

# ---- the real Alpine 3.19 x86_64 index ------------------------------------------------------------


@pytest.fixture(scope="module")
def alpine_index() -> ApkIndex:
    return load_index(INDEX.read_bytes(), Keyring.from_dir(apk_mirror() / "keys"), str(INDEX))


INDEX = apk_mirror() / "alpine" / "v3.19" / "main" / "x86_64" / "APKINDEX.tar.gz"


def _expected_closure(requests: Sequence[str]) -> List[str]:
    return expected_install_order(INDEX, requests)


def _names(entries: Sequence[IndexEntry]) -> List[str]:
    return [e.name for e in entries]


def test_static_set_against_real_index(alpine_index: ApkIndex) -> None:
    request = ["alpine-baselayout-data", "ca-certificates-bundle", "tzdata", "alpine-release"]
    got = resolve([alpine_index], request, "x86_64")
    assert _names(got) == _expected_closure(request)
    assert "alpine-keys" in _names(got)  # alpine-release depends on it
    versions = {e.name: e.version for e in got}
    assert versions["tzdata"] == "2023d-r0" and versions["alpine-release"] == "3.19.1-r0"


@pytest.mark.parametrize(
    "request_, must_include",
    [
        (["busybox"], {"musl"}),  # so:libc.musl-x86_64.so.1
        (["openssl"], {"musl", "libcrypto3", "libssl3"}),  # so:libcrypto.so.3, so:libssl.so.3
        (["apk-tools"], {"musl", "libcrypto3", "libssl3", "zlib", "ca-certificates-bundle"}),
    ],
)
def test_so_and_cmd_dependencies(alpine_index: ApkIndex, request_: List[str], must_include: Set[str]) -> None:
    got = _names(resolve([alpine_index], request_, "x86_64"))
    assert got == _expected_closure(request_)
    assert must_include <= set(got)
    assert got[-1] == request_[0]  # the requested package comes after everything it needs


def test_minirootfs_world(alpine_index: ApkIndex) -> None:
    """The world file of Alpine's 3.19 minirootfs resolves to its 15 installed packages (ssl_client
    joins through install_if "busybox libssl3"; /bin/sh through busybox-binsh)."""
    got = resolve(
        [alpine_index], ["alpine-baselayout", "alpine-keys", "apk-tools", "busybox", "libc-utils"], "x86_64"
    )
    assert sorted(_names(got)) == sorted(
        [
            "alpine-baselayout",
            "alpine-baselayout-data",
            "alpine-keys",
            "apk-tools",
            "busybox",
            "busybox-binsh",
            "ca-certificates-bundle",
            "libc-utils",
            "libcrypto3",
            "libssl3",
            "musl",
            "musl-utils",
            "scanelf",
            "ssl_client",
            "zlib",
        ]
    )
    order = _names(got)
    assert order.index("busybox") < order.index("busybox-binsh") < order.index("alpine-baselayout")
    assert order.index("ssl_client") > max(order.index("busybox"), order.index("libssl3"))


def test_wrong_arch_finds_nothing(alpine_index: ApkIndex) -> None:
    with pytest.raises(OciBuildError, match="no package named or providing 'busybox' for aarch64"):
        resolve([alpine_index], ["busybox"], "aarch64")


# ---- fixture repositories built and signed with the test key -------------------------------------


def _index(*apks: bytes, arch: str = "x86_64") -> ApkIndex:
    return load_index(
        build_index(list(apks)), Keyring.from_pems(keyring_pems()), f"test/{arch}/APKINDEX.tar.gz"
    )


def _labels(entries: Sequence[IndexEntry]) -> List[str]:
    return [f"{e.name}-{e.version}" for e in entries]


def test_best_version_and_constraints() -> None:
    idx = _index(
        build_apk("lib", "1.0-r0"),
        build_apk("lib", "1.10-r0"),
        build_apk("lib", "1.9_rc1-r0"),
        build_apk("lib", "2.0_alpha1-r0"),
        build_apk("app", "1.0-r0", depends=["lib<2"]),
    )
    assert _labels(resolve([idx], ["lib"], "x86_64")) == ["lib-2.0_alpha1-r0"]
    assert _labels(resolve([idx], ["lib<1.9"], "x86_64")) == [
        "lib-1.9_rc1-r0"
    ]  # a release candidate is older
    assert _labels(resolve([idx], ["lib<1.5"], "x86_64")) == ["lib-1.0-r0"]
    assert _labels(resolve([idx], ["lib~1.9"], "x86_64")) == ["lib-1.9_rc1-r0"]
    assert _labels(resolve([idx], ["lib=1.10-r0"], "x86_64")) == ["lib-1.10-r0"]
    # the dependency's constraint wins over "newest", also when the spec names lib first
    assert _labels(resolve([idx], ["app"], "x86_64")) == ["lib-1.10-r0", "app-1.0-r0"]
    assert _labels(resolve([idx], ["lib", "app"], "x86_64")) == ["lib-1.10-r0", "app-1.0-r0"]


def test_unsatisfiable_constraint_is_one_clear_line() -> None:
    idx = _index(build_apk("lib", "1.0-r0"), build_apk("app", "1.0-r0", depends=["lib>=3"]))
    with pytest.raises(OciBuildError) as e:
        resolve([idx], ["app"], "x86_64")
    msg = str(e.value)
    assert msg == "no package for x86_64 satisfies lib>=3 (required by app-1.0-r0); available: lib-1.0-r0"
    with pytest.raises(
        OciBuildError, match=r"satisfies lib<1 \(required by the spec\); available: lib-1.0-r0"
    ):
        resolve([idx], ["lib<1"], "x86_64")


def test_constraints_from_two_packages_that_cannot_both_hold() -> None:
    idx = _index(
        build_apk("lib", "1.0-r0"),
        build_apk("lib", "2.0-r0"),
        build_apk("a", "1-r0", depends=["lib<2"]),
        build_apk("b", "1-r0", depends=["lib>=2"]),
    )
    with pytest.raises(OciBuildError) as e:
        resolve([idx], ["a", "b"], "x86_64")
    msg = str(e.value)
    assert "x86_64" in msg and "lib>=2 (required by b-1-r0)" in msg and "lib<2 (required by a-1-r0)" in msg
    assert "\n" not in msg


def test_unknown_package() -> None:
    idx = _index(build_apk("app", "1.0-r0", depends=["so:libmissing.so.1"]))
    with pytest.raises(OciBuildError) as e:
        resolve([idx], ["nosuch"], "x86_64")
    assert str(e.value) == (
        "no package named or providing 'nosuch' for x86_64 (required by the spec); "
        "check the name and the spec's repositories"
    )
    with pytest.raises(OciBuildError, match=r"'so:libmissing.so.1' for x86_64 \(required by app-1.0-r0\)"):
        resolve([idx], ["app"], "x86_64")


def test_provides_so_cmd_and_versioned_virtuals() -> None:
    idx = _index(
        build_apk("libfoo1", "1.2-r0", provides=["so:libfoo.so.1=1.2"]),
        build_apk("tool", "1.0-r0", depends=["so:libfoo.so.1", "cmd:sh"]),
        build_apk("dash-binsh", "0.5-r0", provides=["cmd:sh", "/bin/sh"], provider_priority=10),
        build_apk("bb-binsh", "1.36-r0", provides=["cmd:sh", "/bin/sh"], provider_priority=100),
        build_apk("new-name", "2.0-r0", provides=["old-name=2.0-r0"]),
        build_apk("needs-old", "1-r0", depends=["old-name>=2"]),
    )
    # the highest provider_priority wins among providers of a virtual name
    assert _labels(resolve([idx], ["tool"], "x86_64")) == [
        "bb-binsh-1.36-r0",
        "libfoo1-1.2-r0",
        "tool-1.0-r0",
    ]
    # an explicit request for a provider takes that one
    assert _labels(resolve([idx], ["dash-binsh", "tool"], "x86_64")) == [
        "dash-binsh-0.5-r0",
        "libfoo1-1.2-r0",
        "tool-1.0-r0",
    ]
    # versioned provides satisfy versioned dependencies
    assert _labels(resolve([idx], ["needs-old"], "x86_64")) == ["new-name-2.0-r0", "needs-old-1-r0"]
    with pytest.raises(OciBuildError, match="satisfies cmd:sh>=1"):
        resolve([idx], ["cmd:sh>=1"], "x86_64")  # unversioned provides cannot meet a version


def test_conflicts() -> None:
    idx = _index(
        build_apk("foo", "1.0-r0"),
        build_apk("bar", "1.0-r0", depends=["!foo"]),
        build_apk("uses-foo", "1.0-r0", depends=["foo"]),
    )
    with pytest.raises(OciBuildError) as e:
        resolve([idx], ["foo", "bar"], "x86_64")
    assert str(e.value) == (
        "bar-1.0-r0 conflicts with foo-1.0-r0 (required by the spec) for x86_64: !foo; "
        "drop one of them from the spec"
    )
    with pytest.raises(
        OciBuildError,
        match=r"bar-1.0-r0 conflicts with foo-1.0-r0 \(required by uses-foo-1.0-r0\) for x86_64",
    ):
        resolve([idx], ["bar", "uses-foo"], "x86_64")
    with pytest.raises(
        OciBuildError, match=r"the spec conflicts with foo-1.0-r0 \(required by uses-foo-1.0-r0\)"
    ):
        resolve([idx], ["!foo", "uses-foo"], "x86_64")
    assert _labels(resolve([idx], ["bar"], "x86_64")) == ["bar-1.0-r0"]


def test_conflict_steers_the_choice_of_provider() -> None:
    idx = _index(
        build_apk("impl-a", "1-r0", provides=["cmd:x"], provider_priority=100),
        build_apk("impl-b", "1-r0", provides=["cmd:x"], provider_priority=1),
        build_apk("app", "1-r0", depends=["!impl-a", "cmd:x"]),
    )
    assert _labels(resolve([idx], ["app"], "x86_64")) == ["impl-b-1-r0", "app-1-r0"]


def test_install_if() -> None:
    idx = _index(
        build_apk("app", "1.0-r0"),
        build_apk("docs", "1.0-r0"),
        build_apk("app-doc", "1.0-r0", depends=["app"], install_if=["app=1.0-r0", "docs"]),
        build_apk("app-old-doc", "1.0-r0", install_if=["app<1"]),
    )
    assert _labels(resolve([idx], ["app"], "x86_64")) == ["app-1.0-r0"]
    assert _labels(resolve([idx], ["docs", "app"], "x86_64")) == [
        "app-1.0-r0",
        "docs-1.0-r0",
        "app-doc-1.0-r0",
    ]


def test_noarch_and_other_arch_entries() -> None:
    idx = _index(
        build_apk("data", "1-r0", arch="noarch"),
        build_apk("bin", "1-r0", arch="aarch64", depends=["data"]),
        build_apk("bin", "2-r0", arch="x86_64", depends=["data"]),
    )
    assert _labels(resolve([idx], ["bin"], "x86_64")) == ["data-1-r0", "bin-2-r0"]
    assert _labels(resolve([idx], ["bin"], "aarch64")) == ["data-1-r0", "bin-1-r0"]


def test_first_repository_wins_for_the_same_build_and_order_is_stable() -> None:
    first = _index(build_apk("a", "1-r0", depends=["c", "b"]), build_apk("b", "1-r0"), build_apk("c", "1-r0"))
    second = _index(build_apk("a", "1-r0", description="other build"), build_apk("d", "1-r0"))
    got = resolve([first, second], ["d", "a"], "x86_64")
    assert _labels(got) == ["b-1-r0", "c-1-r0", "a-1-r0", "d-1-r0"]
    assert got[2] in first.entries
    assert resolve([first, second], ["a", "d"], "x86_64") == got


def test_dependency_cycle_is_broken_by_name() -> None:
    idx = _index(
        build_apk("x", "1-r0", depends=["y"]),
        build_apk("y", "1-r0", depends=["x"]),
        build_apk("z", "1-r0", depends=["x"]),
    )
    assert _labels(resolve([idx], ["z"], "x86_64")) == ["x-1-r0", "y-1-r0", "z-1-r0"]


def test_bad_request_syntax() -> None:
    idx = _index(build_apk("a", "1-r0"))
    with pytest.raises(OciBuildError, match="invalid dependency 'a='"):
        resolve([idx], ["a="], "x86_64")
    with pytest.raises(OciBuildError, match="repository tags"):
        resolve([idx], ["a@edge"], "x86_64")
