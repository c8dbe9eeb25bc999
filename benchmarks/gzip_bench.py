"""Deflate implementations for layer gzip: time and size at levels 6 and 9, and whether the bytes
depend on the system zlib.

Candidates are the interpreter's `zlib` (the system libz.so.1) and PyPI wheels that bundle their
own compressor: `zlib-ng` (zlib_ng.zlib_ng), `isal` (isal.isal_zlib, levels 0-3 only) and `deflate`
(libdeflate, one-shot API). Each compresses a raw deflate stream, as the layer writer does, from
the same tar files; `gzip -n` is printed beside them. Missing wheels are skipped.

    python benchmarks/gzip_bench.py [--tar FILE ...] [--usr-lib-mb 20] [--repeat 3]

With no `--tar`, it uses dist/images.static/packages/x86_64/layer.tar.gz (gunzipped; build it with
`./pants package images/static:packages`) when present, plus a tar of the first N MB of /usr/lib.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from timing import best_of

CHUNK = 1 << 20  # the layer writer feeds its compressor in chunks of about this size
STATIC_LAYER = Path("dist/images.static/packages/x86_64/layer.tar.gz")

Compressor = Callable[[bytes, int], bytes]


def _streaming(module, chunk: int = CHUNK) -> Compressor:
    def compress(data: bytes, level: int) -> bytes:
        c = module.compressobj(level, module.DEFLATED, -15, 8, module.Z_DEFAULT_STRATEGY)
        out = [c.compress(data[i : i + chunk]) for i in range(0, len(data), chunk)]
        return b"".join(out) + c.flush()

    compress.module = module  # type: ignore[attr-defined]
    return compress


def chunking(data: bytes) -> None:
    """Does the output depend on how the input is split into compress() calls? (It must not.)"""
    sizes = (len(data), 1 << 20, 1 << 16, 1 << 12)
    print("  output by call size (whole input / 1 MiB / 64 KiB / 4 KiB): bytes, sha256")
    for name, _, compress, levels in candidates():
        module = getattr(compress, "module", None)
        if module is None:
            print(f"    {name}: one-shot API, no call boundaries")
            continue
        for level in levels:
            outs = [_streaming(module, size)(data, level) for size in sizes]
            same = "same" if len({hashlib.sha256(o).digest() for o in outs}) == 1 else "DIFFERENT"
            cells = " / ".join(f"{len(o):,} {hashlib.sha256(o).hexdigest()[:8]}" for o in outs)
            print(f"    {name} level {level}: {same}: {cells}")


def candidates() -> Iterator[Tuple[str, str, Compressor, Sequence[int]]]:
    """(name, version, raw-deflate compressor, levels to try)."""
    yield "zlib (system)", zlib.ZLIB_RUNTIME_VERSION, _streaming(zlib), (6, 9)
    try:
        zng = importlib.import_module("zlib_ng.zlib_ng")
        yield "zlib-ng", f"{_dist_version('zlib-ng')} (zlib-ng {zng.ZLIBNG_VERSION})", _streaming(zng), (6, 9)
    except ImportError:
        print("(zlib-ng not installed: skipped)")
    try:
        isal_zlib = importlib.import_module("isal.isal_zlib")
        yield "isal", f"{_dist_version('isal')} (bundled ISA-L)", _streaming(isal_zlib), (1, 2, 3)
    except ImportError:
        print("(isal not installed: skipped)")
    try:
        deflate = importlib.import_module("deflate")
        yield "deflate", f"{_dist_version('deflate')} (libdeflate)", deflate.deflate_compress, (6, 9, 12)
    except ImportError:
        print("(deflate not installed: skipped)")


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _gzip_cli(tar: Path, level: int, repeat: int) -> Optional[Tuple[float, int]]:
    if not shutil.which("gzip"):
        return None
    command = ["gzip", "-n", f"-{level}", "-c", str(tar)]
    best, out = best_of(repeat, lambda: subprocess.run(command, check=True, capture_output=True).stdout)
    return best, len(out) - 18  # gzip header (10) and trailer (8): compare deflate bodies


def usr_lib_tar(dest: Path, megabytes: int) -> Path:
    """A deterministic tar of the first `megabytes` MB of regular files under /usr/lib (sorted)."""
    budget = megabytes << 20
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(Path("/usr/lib").rglob("*")):
            if budget <= 0:
                break
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
            budget -= len(data)
    dest.write_bytes(buf.getvalue())
    return dest


def bench(tar: Path, repeat: int) -> None:
    data = tar.read_bytes()
    print(f"\n{tar.name}: {len(data):,} B tar")
    print(
        f"  {'implementation':<44} {'level':>5} {'time':>9} {'MB/s':>7} {'deflate B':>11} {'ratio':>6}  sha256"
    )
    for level in (6, 9):
        cli = _gzip_cli(tar, level, repeat)
        if cli:
            t, size = cli
            print(
                f"  {'gzip -n (CLI, reference)':<44} {level:>5} {t:>8.3f}s {len(data) / t / 1e6:>7.1f} {size:>11,}"
            )
    for name, version, compress, levels in candidates():
        for level in levels:
            t, out = best_of(repeat, lambda: compress(data, level))
            assert zlib.decompress(out, -15) == data, f"{name} level {level} does not round-trip"
            label = f"{name} {version}"
            ratio = len(out) / len(data)
            print(
                f"  {label:<44} {level:>5} {t:>8.3f}s {len(data) / t / 1e6:>7.1f} {len(out):>11,} "
                f"{ratio:>6.3f}  {hashlib.sha256(out).hexdigest()[:16]}"
            )
    chunking(data)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tar", type=Path, action="append", help="a tar (or .tar.gz) to compress")
    parser.add_argument("--usr-lib-mb", type=int, default=20, help="size of the /usr/lib tar (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is printed)")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}, zlib runtime {zlib.ZLIB_RUNTIME_VERSION}")
    with tempfile.TemporaryDirectory(prefix="gzip-bench-") as tmp:
        tars: List[Path] = []
        sources = list(args.tar or ([STATIC_LAYER] if STATIC_LAYER.exists() else []))
        for source in sources:
            if source.name.endswith(".gz"):
                plain = Path(tmp) / (source.parent.name + "-" + source.name[: -len(".gz")])
                plain.write_bytes(gzip.decompress(source.read_bytes()))
                tars.append(plain)
            else:
                tars.append(source)
        if args.usr_lib_mb:
            tars.append(usr_lib_tar(Path(tmp) / f"usr-lib-{args.usr_lib_mb}mb.tar", args.usr_lib_mb))
        for tar in tars:
            bench(tar, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
