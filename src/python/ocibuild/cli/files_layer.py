"""`python -m ocibuild files-layer`: a reproducible layer of files placed under one directory.

    python -m ocibuild files-layer --request request.json    (an ocibuild.contract.FilesLayerRequest)
    python -m ocibuild files-layer --destination /usr/local/bin [--owner 0:0] [--mode 0755] \\
        [--source-date-epoch N] --output-layer layer.tar.gz --output-descriptor layer.json FILE...
"""

from __future__ import annotations

import argparse
from typing import List

from ocibuild.common.atomic import staged_outputs
from ocibuild.contract import FilesLayerRequest, is_request_argv, read_request
from ocibuild.layer.files_layer import FilesLayerOptions, build_files_layer, parse_mode, parse_owner

__all__ = ["main"]


def _from_flags(argv: List[str]) -> FilesLayerRequest:
    p = argparse.ArgumentParser(prog="python -m ocibuild files-layer", description=__doc__.split("\n\n")[0])
    p.add_argument("--destination", required=True, help="absolute directory in the image")
    p.add_argument("--owner", default="0:0", help="numeric uid:gid of the files")
    p.add_argument("--mode", help="octal mode of the files (default: 0755 if executable, else 0644)")
    p.add_argument("--source-date-epoch", type=int, default=0, help="mtime of every entry (default 0)")
    p.add_argument("--output-layer", required=True)
    p.add_argument("--output-descriptor", required=True)
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    return FilesLayerRequest(
        destination=args.destination,
        files=tuple(args.files),
        owner=args.owner,
        mode=args.mode,
        source_date_epoch=args.source_date_epoch,
        output_layer=args.output_layer,
        output_descriptor=args.output_descriptor,
    )


def main(argv: List[str]) -> int:
    request = read_request(FilesLayerRequest, argv) if is_request_argv(argv) else _from_flags(argv)
    uid, gid = parse_owner(request.owner)
    options = FilesLayerOptions(
        destination=request.destination,
        uid=uid,
        gid=gid,
        mode=parse_mode(request.mode) if request.mode else None,
        mtime=request.source_date_epoch,
    )
    # Both outputs or neither: a failed descriptor write must not leave the layer behind.
    with staged_outputs([request.output_layer, request.output_descriptor]) as (layer_path, descriptor_path):
        blob = build_files_layer(request.files, options, layer_path, descriptor_path)
    print(f"{request.output_layer}: {blob.digest} ({blob.size} bytes, {len(request.files)} files)")
    return 0
