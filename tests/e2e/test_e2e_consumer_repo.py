"""End to end: another repository uses the plugin from its wheel, with a stock Pants.

The wheel is what `./pants package src/python:pants-oci` builds in a fresh checkout of this
repository. The consumer repository holds nothing of ours but configuration: a `pants.toml` naming
`pants-oci==<version>` in `[GLOBAL].plugins` (found through `[python-repos].find_links`), and
`images/static/` (BUILD, apko.yaml and its lock) as this repository has it. It is run by a stock
Pants 2.17.1, a clean virtualenv holding only `pantsbuild.pants` (testutil/stock_pants.py), not by
our `./pants`, whose venv carries the core's requirements: so the plugin must work without them in
Pants' process, and the core must get them from its own lock in its Processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from testutil.checkout import make_checkout, run_pants
from testutil.paths import repo_root, shared_dir
from testutil.stock_pants import PANTS_VERSION, ca_bundle, cache_dir, stock_pants

DISTRIBUTION = "src/python:pants-oci"
IMAGE = "images/static:static"
LOCKFILE = "images/static/apko.lock.json"
LAYOUT_INDEX = "dist/images.static/static/layout/index.json"
PEX_VERSION = "2.1.137"  # the pex PEX that ./pants builds from PyPI (GitHub is unreachable here)


def ok(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def printed_digest(output: str) -> str:
    match = re.search(r"^digest: (sha256:[0-9a-f]{64})$", output, re.MULTILINE)
    assert match, output[-3000:]
    return match.group(1)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("consumer")


@pytest.fixture(scope="module")
def built(workspace: Path) -> Dict[str, object]:
    """The wheel, and the static image as this repository's own ./pants builds it."""
    checkout = make_checkout(workspace / "ours")
    output = ok(run_pants(checkout, "package", DISTRIBUTION, IMAGE, timeout=2400))
    wheels = sorted((checkout / "dist").glob("pants_oci-*-py3-none-any.whl"))
    assert len(wheels) == 1, output[-3000:]
    wheel_dir = workspace / "wheels"
    wheel_dir.mkdir()
    wheel = Path(shutil.copy2(wheels[0], wheel_dir))
    version = wheel.name.split("-")[1]
    return {
        "wheel": wheel,
        "version": version,
        "digest": printed_digest(output),
        "index": (checkout / LAYOUT_INDEX).read_bytes(),
    }


def consumer_pants_toml(version: str, wheel_dir: Path) -> str:
    pex_pex = cache_dir() / f"pex-{PEX_VERSION}.pex"
    assert pex_pex.is_file(), f"{pex_pex} is missing: ./pants builds it on first use"
    sha256 = hashlib.sha256(pex_pex.read_bytes()).hexdigest()
    size = pex_pex.stat().st_size
    platforms = ("linux_x86_64", "linux_arm64", "macos_x86_64", "macos_arm64")
    known_versions = [f"v{PEX_VERSION}|{p}|{sha256}|{size}" for p in platforms]
    mirror = shared_dir() / "apk-mirror"
    mirrors = {
        "https://dl-cdn.alpinelinux.org/alpine/": [(mirror / "alpine").as_uri() + "/"],
        "https://alpinelinux.org/keys/": [(mirror / "keys").as_uri() + "/"],
    }
    bundle = ca_bundle()
    return "\n".join(
        [
            "[GLOBAL]",
            f'pants_version = "{PANTS_VERSION}"',
            f'plugins = ["pants-oci=={version}"]',
            'backend_packages = ["pants_oci"]',
            *([f"ca_certs_path = {json.dumps(bundle)}"] if bundle else []),
            "",
            "[anonymous-telemetry]",
            "enabled = false",
            "",
            # Pants' generate-lockfiles asks for it even when only APK resolves are locked.
            "[python]",
            'interpreter_constraints = ["==3.9.*"]',
            "",
            "[python-repos]",
            f"find_links = [{json.dumps(wheel_dir.as_uri() + '/')}]",
            "",
            "[pex-cli]",
            f'version = "v{PEX_VERSION}"',
            f"known_versions = {json.dumps(known_versions)}",
            f"url_template = {json.dumps(pex_pex.as_uri())}",
            "",
            "[subprocess-environment]",
            'env_vars.add = ["PIP_CONFIG_FILE=/dev/null"]',
            "",
            "[apk]",
            'resolves = { static = "images/static/apko.yaml" }',
            "mirrors = "
            + "{ "
            + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in mirrors.items())
            + " }",
            "",
        ]
    )


def run_stock_pants(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANTS_", "PEX_", "PYTHONPATH"))}
    env["NO_SCIE_WARNING"] = "1"
    return subprocess.run(
        [str(stock_pants()), "--no-pantsd", "--no-dynamic-ui", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
        stdin=subprocess.DEVNULL,
    )


def test_a_repository_with_only_pants_toml_builds_the_same_static_image(
    workspace: Path, built: Dict[str, object]
) -> None:
    wheel = built["wheel"]
    assert isinstance(wheel, Path)
    repo = workspace / "consumer"
    (repo / "images").mkdir(parents=True)
    shutil.copytree(repo_root() / "images" / "static", repo / "images" / "static")
    (repo / "pants.toml").write_text(consumer_pants_toml(str(built["version"]), wheel.parent))

    # Lock from scratch: the stock Pants with the plugin from the wheel writes the same lock.
    (repo / LOCKFILE).unlink()
    ok(run_stock_pants(repo, "generate-lockfiles", "--resolve=static"))
    assert (repo / LOCKFILE).read_bytes() == (repo_root() / LOCKFILE).read_bytes()

    output = ok(run_stock_pants(repo, "package", IMAGE))
    assert printed_digest(output) == built["digest"]
    assert (repo / LAYOUT_INDEX).read_bytes() == built["index"]
