"""End to end: `./pants` in fresh checkouts locks, builds and caches the static image.

Each test runs the real bootstrap script and Pants (without pantsd) in copies of this repository
at different paths, as a new user or CI would.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict

import pytest
from testutil.checkout import counter, make_checkout, repo_root, run_pants
from testutil.servers import buildgrid_cache

LOCKFILE = "images/static/apko.lock.json"
STATIC_TARGETS = ("images/static:static", "images/static:static-nonroot")
REMOTE_COUNTERS = (
    "remote_cache_requests_cached",
    "remote_cache_requests_uncached",
    "remote_cache_read_errors",
    "remote_cache_request_timeouts",
    "remote_cache_speculation_local_completed_first",
)


def ok(result) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def tree_digests(root: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def first_build(workspace: Path):
    checkout = make_checkout(workspace / "a")
    store = workspace / "store-a"
    output = ok(run_pants(checkout, "package", *STATIC_TARGETS, store=store))
    return checkout, store, output


def test_generate_lockfiles_reproduces_the_committed_lock(workspace: Path) -> None:
    checkout = make_checkout(workspace / "lock")
    (checkout / LOCKFILE).unlink()
    ok(run_pants(checkout, "generate-lockfiles", "--resolve=static", store=workspace / "store-lock"))
    assert (checkout / LOCKFILE).read_bytes() == (repo_root() / LOCKFILE).read_bytes()


def test_package_prints_the_digest_of_what_it_wrote(first_build) -> None:
    checkout, _, output = first_build
    layout = checkout / "dist/images.static/static/layout"
    index = json.loads((layout / "index.json").read_text())
    (manifest,) = index["manifests"]
    assert f"digest: {manifest['digest']}" in output
    blob = layout / "blobs/sha256" / manifest["digest"].split(":")[1]
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == manifest["digest"]


def test_two_checkouts_build_identical_images(workspace: Path, first_build) -> None:
    checkout_a, _, _ = first_build
    checkout_b = make_checkout(workspace / "b" / "deeper", name="other-name")
    ok(
        run_pants(
            checkout_b,
            "package",
            *STATIC_TARGETS,
            store=workspace / "store-b",
            extra_env={"TZ": "Pacific/Kiritimati", "LANG": "C"},
        )
    )
    for target in ("static", "static-nonroot"):
        a = tree_digests(checkout_a / "dist/images.static" / target)
        b = tree_digests(checkout_b / "dist/images.static" / target)
        assert a and a == b


def test_rebuild_runs_no_build_process(first_build) -> None:
    checkout, store, first_output = first_build
    assert "Build APK layer" in first_output and "Assemble OCI image" in first_output
    output = ok(run_pants(checkout, "package", *STATIC_TARGETS, store=store))
    # Local cache hits run nothing and so log no "Starting:" line for the build steps.
    assert "Build APK layer" not in output
    assert "Assemble OCI image" not in output
    # (interpreter probes are cached per Pants restart only, so some lookups stay uncached)
    assert counter(output, "local_cache_requests_cached") >= 4


def test_fresh_machine_is_served_by_the_remote_cache(workspace: Path) -> None:
    remote = workspace / "remote"
    remote.mkdir()
    with buildgrid_cache(remote) as cache:
        options = (
            "--remote-cache-read",
            "--remote-cache-write",
            f"--remote-store-address={cache.address}",
            f"--remote-instance-name={cache.instance}",
            # A loaded CI machine must not turn slow cache answers into local re-runs.
            "--remote-cache-rpc-timeout-millis=30000",
        )
        writer = make_checkout(workspace / "writer")
        ok(run_pants(writer, *options, "package", *STATIC_TARGETS, store=workspace / "store-writer"))
        # A second machine: another checkout and an empty local store.
        reader = make_checkout(workspace / "reader")
        output = ok(run_pants(reader, *options, "package", *STATIC_TARGETS, store=workspace / "store-reader"))
    stats = {name: counter(output, name) for name in REMOTE_COUNTERS}
    # The ocibuild PEX, the layer and both images: every one came from the cache, none ran here.
    assert stats["remote_cache_requests_cached"] >= 4, stats
    assert stats["remote_cache_requests_uncached"] == 0, stats
    assert stats["remote_cache_speculation_local_completed_first"] == 0, stats
    assert tree_digests(writer / "dist/images.static") == tree_digests(reader / "dist/images.static")


def test_a_stale_or_tampered_lock_fails_the_build_clearly(workspace: Path) -> None:
    checkout = make_checkout(workspace / "stale")
    spec = checkout / "images/static/apko.yaml"
    spec.write_text(spec.read_text().replace("    - tzdata ", "    - tzdata>=2023c "))
    stale = run_pants(checkout, "package", "images/static:packages")
    assert stale.returncode != 0
    assert (
        f"{LOCKFILE} is stale: images/static/apko.yaml changed since it was locked; re-lock the resolve: "
        "run `pants generate-lockfiles --resolve=static`."
    ) in stale.stderr

    spec.write_text((repo_root() / "images/static/apko.yaml").read_text())
    lock = json.loads((checkout / LOCKFILE).read_text())
    tzdata = next(p for p in lock["contents"]["packages"] if p["name"] == "tzdata")
    tzdata["sha256"] = "0" * 64
    (checkout / LOCKFILE).write_text(json.dumps(lock, indent=2))
    tampered = run_pants(checkout, "package", "images/static:packages")
    assert tampered.returncode != 0
    assert f"could not download {tzdata['url']} (sha256 {'0' * 64}" in tampered.stderr
    assert not (checkout / "dist/images.static/packages").exists()
