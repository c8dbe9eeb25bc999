"""zstd layers (`oci_image(compression="zstd")`): size and time of our zstd encoding beside our gzip
and the `zstd -19` CLI, on the same tar; and the levels around the one we use.

    python benchmarks/zstd_bench.py [--tar FILE ...] [--usr-lib-mb 0] [--repeat 3]

With no `--tar`, it uses dist/images.static/packages/x86_64/layer.tar.gz (gunzipped; build it with
`./pants package images/static:packages`). `--usr-lib-mb N` adds a tar of the first N MB of
/usr/lib. Ratios are against our gzip (the layer writer's: libdeflate, one member per 1 MiB);
the goal for zstd is <= 0.65x. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import zstandard
from gzip_bench import STATIC_LAYER, usr_lib_tar
from ocibuild.common.compression import GZIP_MEMBER_BLOCK, ZSTD_LEVEL, gzip_member, zstd_compress
from ocibuild.layer.tarball import DEFAULT_GZIP_LEVEL
from timing import best_of

GOAL = 0.65
LEVELS = (3, 9, 15, 17, 19, 22)


def our_gzip(data: bytes) -> bytes:
    return b"".join(
        gzip_member(data[i : i + GZIP_MEMBER_BLOCK], DEFAULT_GZIP_LEVEL)
        for i in range(0, max(len(data), 1), GZIP_MEMBER_BLOCK)
    )


def our_zstd(data: bytes) -> bytes:
    out = io.BytesIO()
    zstd_compress(io.BytesIO(data), out, len(data), "benchmark")
    return out.getvalue()


def zstd_cli(tar: Path, level: int) -> Optional[bytes]:
    if not shutil.which("zstd"):
        return None
    return subprocess.run(["zstd", f"-{level}", "-q", "-c", str(tar)], check=True, capture_output=True).stdout


def _cli_version() -> str:
    if not shutil.which("zstd"):
        return "not installed (apt-get install zstd)"
    return subprocess.run(["zstd", "-V"], capture_output=True, text=True).stdout.strip()


def bench(tar: Path, repeat: int) -> None:
    data = tar.read_bytes()
    print(f"\n{tar}: {len(data):,} B tar")
    gzip_time, gzipped = best_of(repeat, lambda: our_gzip(data))
    assert gzip.decompress(gzipped) == data
    base = len(gzipped)
    rows: List[Tuple[str, float, int]] = [(f"our gzip (libdeflate {DEFAULT_GZIP_LEVEL})", gzip_time, base)]
    zstd_time, zstded = best_of(repeat, lambda: our_zstd(data))
    assert zstandard.ZstdDecompressor().decompress(zstded) == data
    rows.append((f"our zstd (zstandard, level {ZSTD_LEVEL})", zstd_time, len(zstded)))
    cli_time, cli = best_of(repeat, lambda: zstd_cli(tar, 19) or b"")
    if cli:
        rows.append(("zstd -19 (CLI)", cli_time, len(cli)))
    print(f"  {'encoder':<36} {'bytes':>11} {'vs our gzip':>12} {'time':>9} {'MB/s':>7}")
    for name, seconds, size in rows:
        print(
            f"  {name:<36} {size:>11,} {size / base:>11.3f}x {seconds:>8.3f}s {len(data) / seconds / 1e6:>7.1f}"
        )
    verdict = "meets" if len(zstded) <= GOAL * base else "MISSES"
    print(f"  our zstd is {len(zstded) / base:.3f}x our gzip: {verdict} the goal of <= {GOAL}x")
    decode_time, _ = best_of(repeat, lambda: zstandard.ZstdDecompressor().decompress(zstded))
    gunzip_time, _ = best_of(repeat, lambda: gzip.decompress(gzipped))
    print(f"  decoding: zstd {decode_time:.3f}s, gzip {gunzip_time:.3f}s")
    print("  zstandard levels (one-shot API, so a few bytes off our streaming encoder's above 8 MB):")
    for level in LEVELS:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        seconds, out = best_of(1, lambda: compressor.compress(data))
        print(f"    level {level:>2}: {len(out):>11,} B {len(out) / base:>6.3f}x {seconds:>8.3f}s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tar", type=Path, action="append", help="a tar (or .tar.gz) to compress")
    parser.add_argument("--usr-lib-mb", type=int, default=0, help="size of a /usr/lib tar to add (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is printed)")
    args = parser.parse_args(argv)
    print(
        f"Python {sys.version.split()[0]}, zstandard {zstandard.__version__} "
        f"(libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}), CLI: {_cli_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="zstd-bench-") as tmp:
        tars = list(args.tar or [])
        if not tars and STATIC_LAYER.exists():
            tars.append(STATIC_LAYER)
        if args.usr_lib_mb:
            tars.append(usr_lib_tar(Path(tmp) / "usr-lib.tar", args.usr_lib_mb))
        if not tars:
            print(f"no tar: build {STATIC_LAYER} with `./pants package images/static:packages` or pass --tar")
            return 1
        for tar in tars:
            if tar.suffix == ".gz":
                plain = Path(tmp) / (tar.parent.name + "-" + tar.stem)
                plain.write_bytes(gzip.decompress(tar.read_bytes()))
                tar = plain
            bench(tar, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
