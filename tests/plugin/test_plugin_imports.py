"""In Pants' own process the plugin imports only Pants, the standard library and PyYAML.

A stock Pants 2.17.1 has neither `requests` nor `cryptography`: the core needs them only inside its
Processes (the `[ocibuild]` tool's PEX). Each check runs in a fresh interpreter, so that nothing this
test process imported hides what the plugin imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Imported here too so that Pants puts them in the test's sandbox; the checks import them afresh.
import ocibuild.apk.lockfile
import ocibuild.apk.mirrors
import pants_oci.register
from testutil.paths import repo_root

FORBIDDEN = ("requests", "urllib3", "cryptography")


def _loaded_in_fresh_interpreter(code: str, stdin: str = "") -> dict:
    script = (
        code
        + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(os.path.abspath(p or ".") for p in sys.path))
    result = subprocess.run(
        [sys.executable, "-c", script], input=stdin, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_backend_loads_no_core_requirement() -> None:
    assert _loaded_in_fresh_interpreter(f"import {pants_oci.register.__name__}") == []


def test_what_the_plugin_does_with_a_lock_loads_no_core_requirement() -> None:
    # What the rules do in Pants' process: read the lock, pick a layer's closure, subset it, map
    # download URLs through the mirrors.
    code = """
import sys
import pants_oci.register
from ocibuild.apk.lockfile import dump_lockfile, load_lockfile, select_packages
from ocibuild.apk.mirrors import Mirrors

lock = load_lockfile(sys.stdin.read(), "apko.lock.json", check_keys=False)
arch = lock.packages[0].architecture
closure = select_packages(lock.packages_for(arch), ("tzdata",), arch)
assert [p.name for p in closure] == ["tzdata"], closure
dump_lockfile(lock.subset(arch, closure))
mirrors = Mirrors({"https://dl-cdn.alpinelinux.org/alpine/": ["file:///m/"]})
assert mirrors.candidates(closure[0].url)[0].startswith("file:///m/")
"""
    assert {ocibuild.apk.lockfile.__name__, ocibuild.apk.mirrors.__name__} <= set(sys.modules)
    lock_text = (repo_root() / "images/static/apko.lock.json").read_text()
    assert _loaded_in_fresh_interpreter(code, stdin=lock_text) == []
