"""`python -m ocibuild apk-layer`: one architecture's layer of APK packages from a lockfile.

    python -m ocibuild apk-layer --request request.json      (an ocibuild.contract.ApkLayerRequest)
    python -m ocibuild apk-layer --lockfile apko.lock.json --arch x86_64 --packages-dir pkgs/ \\
        [--package NAME ...] [--accounts accounts.json] [--source-date-epoch N] [--allow-setuid] \\
        [--skip-scripts-of NAME ...] --output-layer layer.tar.gz --output-descriptor layer.json

Package files are found in --packages-dir by the basename of their lock URL. See docs/apk-layer.md.
"""

from __future__ import annotations

import argparse
from typing import List

from ocibuild.apk.lockfile import load_lockfile
from ocibuild.common.atomic import staged_outputs
from ocibuild.contract import ApkLayerRequest, is_request_argv, read_request
from ocibuild.errors import OciBuildError
from ocibuild.layer.accounts import load_accounts
from ocibuild.layer.apk_layer import ApkLayerOptions, build_apk_layer

__all__ = ["main"]


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise OciBuildError(f"{path}: cannot read the {what} ({e.strerror})") from None
    except UnicodeDecodeError:
        raise OciBuildError(f"{path}: the {what} is not UTF-8 text; pass the right file") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ocibuild apk-layer", description=__doc__.split("\n\n")[0])
    p.add_argument("--lockfile", required=True)
    p.add_argument("--arch", required=True, help="APK architecture, e.g. x86_64 or aarch64")
    p.add_argument("--packages-dir", required=True, help="folder holding the lock's .apk files")
    p.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="NAME",
        help="only this package and its lock dependencies (repeatable; default: all)",
    )
    p.add_argument("--accounts", help="users and groups, apko's accounts format as JSON")
    p.add_argument(
        "--source-date-epoch", type=int, help="mtime of every entry (default: newest package build time)"
    )
    p.add_argument("--allow-setuid", action="store_true", help="accept setuid/setgid files")
    p.add_argument(
        "--skip-scripts-of",
        action="append",
        default=[],
        metavar="NAME",
        help="package whose install scripts are safe to skip (repeatable)",
    )
    p.add_argument("--output-layer", required=True)
    p.add_argument("--output-descriptor", required=True)
    return p


def _from_flags(argv: List[str]) -> ApkLayerRequest:
    args = _parser().parse_args(argv)
    if args.source_date_epoch is not None and args.source_date_epoch < 0:
        raise OciBuildError(f"--source-date-epoch {args.source_date_epoch}: must not be negative")
    return ApkLayerRequest(
        lockfile=args.lockfile,
        arch=args.arch,
        packages_dir=args.packages_dir,
        packages=tuple(args.package),
        accounts=args.accounts,
        source_date_epoch=args.source_date_epoch,
        allow_setuid=args.allow_setuid,
        skip_scripts_of=tuple(args.skip_scripts_of),
        output_layer=args.output_layer,
        output_descriptor=args.output_descriptor,
    )


def main(argv: List[str]) -> int:
    request = read_request(ApkLayerRequest, argv) if is_request_argv(argv) else _from_flags(argv)
    lock = load_lockfile(_read_text(request.lockfile, "lockfile"), request.lockfile)
    accounts = (
        load_accounts(_read_text(request.accounts, "accounts file"), request.accounts)
        if request.accounts
        else None
    )
    options = ApkLayerOptions(
        arch=request.arch,
        packages=request.packages,
        accounts=accounts,
        source_date_epoch=request.source_date_epoch,
        allow_setuid=request.allow_setuid,
        skip_scripts_of=request.skip_scripts_of,
    )
    # Both outputs or neither: a failed descriptor write must not leave the layer behind.
    with staged_outputs([request.output_layer, request.output_descriptor]) as (layer_path, descriptor_path):
        descriptor = build_apk_layer(lock, request.packages_dir, options, layer_path, descriptor_path)
    print(
        f"{request.output_layer}: {descriptor.blob.digest} ({descriptor.blob.size} bytes, "
        f"{len(descriptor.packages)} packages)"
    )
    return 0
