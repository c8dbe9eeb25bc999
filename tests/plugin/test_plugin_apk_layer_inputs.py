"""An `apk_layer`'s process gets exactly its packages: the closure of `packages` chosen by the core's
`select_packages` (the function the layer builder installs by), downloaded through [apk].mirrors,
and a lock of just those packages, so that its cache key ignores the rest of the lock."""

from __future__ import annotations

import dataclasses
import types

import pytest
from ocibuild.apk.lockfile import Lockfile, dump_lockfile, load_lockfile, select_packages
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants_oci import register
from pants_oci.errors import ApkLockfileError, StaleApkLockfileError
from pants_oci.util_rules.layers import ApkLayerInputs, ApkLayerInputsRequest, _check_lock_is_fresh
from testutil.apk_layers import alpine_lock, alpine_packages_dir
from testutil.paths import apk_mirror
from testutil.plugin_rules import bootstrap_options, plugin_rules

LOCK_PATH = "img/apko.lock.json"
PACKAGES = ("busybox", "ca-certificates-bundle", "tzdata", "alpine-release")


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(
        rules=[
            *plugin_rules(),
            QueryRule(ApkLayerInputs, [ApkLayerInputsRequest]),
            QueryRule(DigestContents, [Digest]),
        ],
        target_types=register.target_types(),
    )
    mirrors = {"https://dl-cdn.alpinelinux.org/alpine/": [(apk_mirror() / "alpine").as_uri() + "/"]}
    # The packages are fetched by the core's fetch-apk Processes.
    runner.set_options([f"--apk-mirrors={mirrors!r}", *bootstrap_options()], env_inherit={"PATH", "HOME"})
    return runner


@pytest.fixture(scope="module")
def lock() -> Lockfile:
    return alpine_lock(PACKAGES)


def _inputs(rule_runner: RuleRunner, lock: Lockfile, packages=("busybox",)) -> ApkLayerInputs:
    return rule_runner.request(
        ApkLayerInputs, [ApkLayerInputsRequest(lock, LOCK_PATH, "x86_64", tuple(packages), "img:packages")]
    )


def _files(rule_runner: RuleRunner, digest: Digest) -> dict:
    return {fc.path: fc.content for fc in rule_runner.request(DigestContents, [digest])}


def test_subset_layer_gets_only_its_closure(rule_runner: RuleRunner, lock: Lockfile) -> None:
    closure = select_packages(lock.packages_for("x86_64"), ["busybox"], "x86_64")
    assert [p.name for p in closure] == ["musl", "busybox"]
    inputs = _inputs(rule_runner, lock)
    assert inputs.packages == ("musl", "busybox")
    files = _files(rule_runner, inputs.digest)
    assert sorted(files) == sorted([LOCK_PATH] + [f"apks/x86_64/{p.filename}" for p in closure])
    for p in closure:
        assert files[f"apks/x86_64/{p.filename}"] == (alpine_packages_dir() / p.filename).read_bytes()
    process_lock = load_lockfile(files[LOCK_PATH].decode(), LOCK_PATH)
    assert process_lock.packages == tuple(closure) and process_lock.keys == lock.keys


def test_other_packages_of_the_lock_do_not_change_the_inputs(rule_runner: RuleRunner, lock: Lockfile) -> None:
    before = _inputs(rule_runner, lock).digest
    tzdata = next(p for p in lock.packages if p.name == "tzdata")
    changed = dataclasses.replace(
        lock,
        spec_checksum="sha256-" + "A" * 43 + "=",  # the spec changed too
        packages=tuple(
            dataclasses.replace(p, version="2099a-r0", sha256="0" * 64) if p is tzdata else p
            for p in lock.packages
        ),
    )
    assert _inputs(rule_runner, changed).digest == before
    # while a change to a package of the closure does change them
    busybox = dataclasses.replace(
        changed,
        packages=tuple(
            dataclasses.replace(p, replaces=("busybox-extras",)) if p.name == "busybox" else p
            for p in changed.packages
        ),
    )
    assert _inputs(rule_runner, busybox).digest != before


def test_whole_lock_layer_gets_every_package(rule_runner: RuleRunner, lock: Lockfile) -> None:
    inputs = _inputs(rule_runner, lock, packages=())
    assert inputs.packages == tuple(p.name for p in lock.packages_for("x86_64"))
    files = _files(rule_runner, inputs.digest)
    assert len(files) == 1 + len(lock.packages_for("x86_64"))
    assert files[LOCK_PATH].decode() == dump_lockfile(lock.subset("x86_64", lock.packages_for("x86_64")))


def test_a_lock_without_sha256_and_size_says_to_relock(rule_runner: RuleRunner, lock: Lockfile) -> None:
    apko_style = dataclasses.replace(
        lock, packages=tuple(dataclasses.replace(p, sha256=None, size=None) for p in lock.packages)
    )
    with pytest.raises(ExecutionError) as error:
        _inputs(rule_runner, apko_style)
    assert [type(e) for e in error.value.wrapped_exceptions] == [ApkLockfileError]
    message = str(error.value).strip().splitlines()[-1].split(": ", 1)[1]
    assert message == (
        f"img:packages: {LOCK_PATH}: package musl (x86_64) has no sha256/size, which Pants needs to "
        "download it (a lock written by apko?): re-lock the resolve: run `pants generate-lockfiles`."
    )


def test_a_package_not_in_the_lock_is_named(rule_runner: RuleRunner, lock: Lockfile) -> None:
    with pytest.raises(ExecutionError) as error:
        _inputs(rule_runner, lock, packages=("nano",))
    assert [type(e) for e in error.value.wrapped_exceptions] == [ApkLockfileError]
    assert f"img:packages: {LOCK_PATH}: package nano is not in the lock for x86_64" in str(error.value)


def test_a_stale_lock_raises_stale_apk_lockfile_error(lock: Lockfile) -> None:
    stale = dataclasses.replace(lock, spec_name="img/apko.yaml", spec_checksum="sha256-not-this-spec")
    apk = types.SimpleNamespace(resolves={"img": "img/apko.yaml"})
    with pytest.raises(StaleApkLockfileError, match="is stale: img/apko.yaml changed since it was locked"):
        _check_lock_is_fresh(stale, LOCK_PATH, b"contents: {}\n", apk)  # type: ignore[arg-type]
    assert issubclass(StaleApkLockfileError, ApkLockfileError)
