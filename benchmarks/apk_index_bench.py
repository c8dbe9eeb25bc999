"""Benchmark (prints figures; not a test): verify, parse and resolve against a 25,000-entry index.

Generates a signed APKINDEX.tar.gz shaped like Alpine's (so:/cmd:/pc: provides, versioned
dependencies, several builds of some names, conflicts, install_if), then times the core verifying,
parsing and resolving a 50-package spec against it, beside Alpine's apk 2.14 doing the same work
(`apk add --simulate`: read and verify the index, solve; nothing installed).

    PYTHONPATH=src/python:tests python benchmarks/apk_index_bench.py [--entries 25000] [--runs 3]

Goals (docs/apk-lockfile.md): no slower than 2x apk, under 1 s, peak memory under 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

from testutil.apkbuild import TEST_KEY, build_index, write_keys
from testutil.paths import shared_dir
from testutil.synthetic_index import generate_index_text

ARCH = "x86_64"


def measure_ours(index_path: Path, keys_dir: Path, spec: List[str]) -> dict:
    from ocibuild.apk.index import load_index
    from ocibuild.apk.resolve import resolve
    from ocibuild.apk.signing import Keyring

    start = time.perf_counter()
    data = index_path.read_bytes()
    index = load_index(data, Keyring.from_dir(keys_dir), str(index_path))
    loaded = time.perf_counter()
    chosen = resolve([index], spec, ARCH)
    done = time.perf_counter()
    return {
        "load_s": loaded - start,
        "resolve_s": done - loaded,
        "total_s": done - start,
        "entries": len(index.entries),
        "chosen": len(chosen),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(argv: List[str], env=None) -> Tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS MB, result) of one child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())
    return wall, usage.ru_maxrss / 1024, result


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=25000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--measure", nargs=3, metavar=("INDEX", "KEYS", "SPEC_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(
            json.dumps(
                measure_ours(Path(args.measure[0]), Path(args.measure[1]), json.loads(args.measure[2]))
            )
        )
        return 0

    with tempfile.TemporaryDirectory(prefix="apk-index-bench-") as work:
        return _compare(Path(work), args.entries, args.runs)


def _compare(work: Path, entries: int, runs: int) -> int:
    text, spec = generate_index_text(entries)
    repo = work / "repo" / ARCH
    repo.mkdir(parents=True)
    index_path = repo / "APKINDEX.tar.gz"
    index_path.write_bytes(build_index([], TEST_KEY, "bench", apkindex_text=text))
    keys = write_keys(work / "keys", TEST_KEY)
    print(
        f"index: {entries} entries, {index_path.stat().st_size / 1e6:.1f} MB compressed, "
        f"{len(text) / 1e6:.1f} MB text; spec: {len(spec)} packages"
    )

    ours = []
    for _ in range(runs):
        child = [sys.executable, __file__, "--measure", str(index_path), str(keys), json.dumps(spec)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        wall, _, result = run_child(child, env)
        if result.returncode:
            print(result.stderr.decode()[-2000:])
            return 1
        figures = json.loads(result.stdout)
        figures["process_s"] = wall
        ours.append(figures)
    best = min(ours, key=lambda f: f["total_s"])
    print(
        f"ocibuild: verify+parse {best['load_s']:.3f} s, resolve {best['resolve_s']:.3f} s, "
        f"total {best['total_s']:.3f} s (process incl. interpreter start {best['process_s']:.3f} s), "
        f"peak {best['peak_mb']:.0f} MB, {best['chosen']} packages chosen"
    )

    apk_bin = shared_dir() / "apk-reference" / "apk"
    if platform.machine() != "x86_64" or not apk_bin.exists():
        print("apk: not run (the reference binary is x86_64 only)")
        return 0
    root = work / "root"
    root.mkdir()
    common = [
        str(apk_bin),
        "--root",
        str(root),
        "--keys-dir",
        str(keys),
        "--repository",
        str(work / "repo"),
        "--no-cache",
        "--arch",
        ARCH,
    ]
    subprocess.run([*common, "--initdb", "add"], check=True, capture_output=True)
    apk_runs = []
    for _ in range(runs):
        wall, peak, result = run_child([*common, "add", "--simulate", *spec])
        if result.returncode:
            print("apk failed:", result.stderr.decode()[-2000:])
            return 1
        apk_runs.append((wall, peak, result.stdout.decode()))
    wall, peak, out = min(apk_runs)
    installs = sum(1 for line in out.splitlines() if "Installing" in line)
    print(f"apk 2.14: add --simulate {wall:.3f} s, peak {peak:.0f} MB, {installs} packages chosen")
    ratio = best["total_s"] / wall
    print(
        f"ratio ocibuild/apk: {ratio:.2f}x (process wall: {best['process_s'] / wall:.2f}x); goals: <= 2x, < 1 s, < 200 MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
