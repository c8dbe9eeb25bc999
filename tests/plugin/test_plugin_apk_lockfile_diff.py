"""`[generate-lockfiles].diff` is honoured for APK resolves: the core goal asks for a diff (it sets
`diff` on the requests when the option is on), and without it no per-package changes are made."""

from __future__ import annotations

import dataclasses

import pytest
from ocibuild.apk.lockfile import Lockfile, dump_lockfile
from pants.core.goals.generate_lockfiles import UserGenerateLockfiles
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants_oci import register
from pants_oci.goals.generate_apk_lockfiles import (
    GenerateApkLockfile,
    RequestedApkUserResolveNames,
    lockfile_diff,
)
from testutil.apk_layers import alpine_lock
from testutil.plugin_rules import plugin_rules

LOCK_PATH = "images/static/apko.lock.json"


@pytest.fixture
def lock() -> Lockfile:
    return alpine_lock(("busybox",))


def _request(diff: bool) -> GenerateApkLockfile:
    return GenerateApkLockfile(
        resolve_name="static", lockfile_dest=LOCK_PATH, diff=diff, spec_path="images/static/apko.yaml"
    )


def test_requests_leave_the_diff_to_the_goals_option() -> None:
    rule_runner = RuleRunner(
        rules=[*plugin_rules(), QueryRule(UserGenerateLockfiles, [RequestedApkUserResolveNames])],
        target_types=register.target_types(),
    )
    rule_runner.set_options(['--apk-resolves={"static": "images/static/apko.yaml"}'])
    requests = rule_runner.request(UserGenerateLockfiles, [RequestedApkUserResolveNames(["static"])])
    assert [(r.resolve_name, r.lockfile_dest, r.diff) for r in requests] == [("static", LOCK_PATH, False)]


def test_no_diff_when_not_asked(lock: Lockfile) -> None:
    older = dataclasses.replace(
        lock, packages=tuple(dataclasses.replace(p, version="0.1-r0") for p in lock.packages)
    )
    assert lockfile_diff(_request(diff=False), dump_lockfile(older), dump_lockfile(lock)) is None


def test_diff_names_the_changed_packages_when_asked(lock: Lockfile) -> None:
    first, *rest = lock.packages
    older = dataclasses.replace(lock, packages=(dataclasses.replace(first, version="0.1-r0"), *rest[1:]))
    diff = lockfile_diff(_request(diff=True), dump_lockfile(older), dump_lockfile(lock))
    assert diff is not None
    key = f"{first.name} ({first.architecture})"
    assert str(diff.upgraded[key][0]) == "0.1-r0" and str(diff.upgraded[key][1]) == first.version
    if rest:
        assert f"{rest[0].name} ({rest[0].architecture})" in diff.added
    new_only = lockfile_diff(_request(diff=True), None, dump_lockfile(lock))
    assert new_only is not None and len(new_only.added) == len(lock.packages)
