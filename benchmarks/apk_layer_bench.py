"""Benchmark (prints figures; not a test): the APK layer build of the static set against the shell
pipeline `tar --sort=name ... | gzip -n` on the same extracted files, and its size against the
packages' own data members.

    PYTHONPATH=src/python:tests python benchmarks/apk_layer_bench.py [--runs 5]

Targets (issue 11, docs/apk-layer.md): build within 1.5x of the pipeline, size <= 1.0x of `gzip -9 -n`
of the same tar and <= 1.02x of the data members. Ours and the pipeline run alternately, so that a
load change on the machine affects both; the best of the runs is compared (the median is printed too).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

from ocibuild.apk.archive import read_apk
from ocibuild.apk.lockfile import dump_lockfile
from ocibuild.layer.apk_layer import ApkLayerOptions, assemble_root, build_apk_layer
from ocibuild.layer.tarball import write_layer
from testutil.apk_layers import STATIC_SET, alpine_packages_dir, lock_alpine
from timing import alternately, best_of

SHELL_PIPELINE = (
    "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -c -C {src} . | gzip -n > {out}"
)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)

    packages_dir = alpine_packages_dir()
    lockfile = lock_alpine(STATIC_SET)  # a real lock, from the offline mirror's signed index
    packages = lockfile.packages_for("x86_64")
    data_members = 0
    for pkg in packages:
        archive = read_apk((packages_dir / pkg.filename).read_bytes(), pkg.filename)
        data_members += len(archive.data_member or b"")

    work = Path(tempfile.mkdtemp(prefix="apk-layer-bench-"))
    try:
        layer = work / "layer.tar.gz"
        options = ApkLayerOptions(arch="x86_64")

        def build() -> None:
            build_apk_layer(lockfile, str(packages_dir), options, str(layer))

        build()
        extracted = work / "root"
        extracted.mkdir()
        subprocess.run(["tar", "-xzf", str(layer), "-C", str(extracted), "--numeric-owner"], check=True)
        shell_out = work / "shell.tar.gz"
        command = SHELL_PIPELINE.format(src=extracted, out=shell_out)

        def shell() -> None:
            subprocess.run(command, shell=True, check=True)

        our_times, their_times = alternately(args.runs, build, shell)
        ours, theirs = our_times[0], their_times[0]
        # The writer alone: tar + gzip of the assembled root's entries (in memory), as the pipeline's
        # tar + gzip of the extracted files.
        root = assemble_root(lockfile, str(packages_dir), options)
        writer_time, _ = best_of(
            args.runs,
            lambda: write_layer(root.rootfs.tar_entries(), str(work / "w.tar.gz"), mtime=root.mtime),
        )
        layer_size = layer.stat().st_size
        shell_size = shell_out.stat().st_size
        tar_bytes = gzip.decompress(layer.read_bytes())
        gzip9_size = len(
            subprocess.run(["gzip", "-9", "-n"], input=tar_bytes, capture_output=True, check=True).stdout
        )

        cli = [
            sys.executable,
            "-m",
            "ocibuild",
            "apk-layer",
            "--lockfile",
            str(work / "lock.json"),
            "--arch",
            "x86_64",
            "--packages-dir",
            str(packages_dir),
            "--output-layer",
            str(work / "cli.tar.gz"),
            "--output-descriptor",
            str(work / "cli.json"),
        ]
        (work / "lock.json").write_text(dump_lockfile(lockfile))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        cli_time, _ = best_of(
            args.runs, lambda: subprocess.run(cli, check=True, env=env, capture_output=True)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"static set: {', '.join(p.name + '-' + p.version for p in packages)}")
    median = args.runs // 2
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"layer build (library call, verify + install + db + tar + gzip): {ours * 1000:8.1f} ms"
        f" (median {our_times[median] * 1000:.1f})"
    )
    print(f"layer build (python -m ocibuild apk-layer, incl. interpreter start): {cli_time * 1000:8.1f} ms")
    print(
        f"shell pipeline (tar --sort=name ... | gzip -n, files already extracted): {theirs * 1000:8.1f} ms"
        f" (median {their_times[median] * 1000:.1f})"
    )
    print(f"layer writer alone (tar + gzip of the assembled entries): {writer_time * 1000:8.1f} ms")
    print(
        f"  ratio library/shell: {ours / theirs:5.2f}x (target <= 1.5x)   cli/shell: {cli_time / theirs:5.2f}x"
        f"   writer alone/shell: {writer_time / theirs:5.2f}x"
    )
    print(f"layer size:            {layer_size:10d} bytes")
    print(f"shell pipeline size:   {shell_size:10d} bytes (gzip -6)")
    print(f"gzip -9 -n of the tar: {gzip9_size:10d} bytes")
    print(f"  ratio layer/gzip -9: {layer_size / gzip9_size:5.3f} (target <= 1.0)")
    print(f"sum of data members:   {data_members:10d} bytes")
    print(f"  ratio layer/data members: {layer_size / data_members:5.3f} (target <= 1.02)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
