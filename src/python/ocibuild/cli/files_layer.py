"""`python -m ocibuild files-layer`: a reproducible layer of files placed under one directory.

    python -m ocibuild files-layer --destination /usr/local/bin [--owner 0:0] [--mode 0755] \\
        [--source-date-epoch N] --output-layer layer.tar.gz --output-descriptor layer.json FILE...
"""

from __future__ import annotations

import argparse
from typing import List

from ocibuild.common.atomic import staged_outputs
from ocibuild.layer.files_layer import FilesLayerOptions, build_files_layer, parse_mode, parse_owner


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m ocibuild files-layer", description=__doc__.split("\n\n")[0])
    p.add_argument("--destination", required=True, help="absolute directory in the image")
    p.add_argument("--owner", default="0:0", help="numeric uid:gid of the files")
    p.add_argument("--mode", help="octal mode of the files (default: 0755 if executable, else 0644)")
    p.add_argument("--source-date-epoch", type=int, default=0, help="mtime of every entry (default 0)")
    p.add_argument("--output-layer", required=True)
    p.add_argument("--output-descriptor", required=True)
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    uid, gid = parse_owner(args.owner)
    options = FilesLayerOptions(
        destination=args.destination,
        uid=uid,
        gid=gid,
        mode=parse_mode(args.mode) if args.mode else None,
        mtime=args.source_date_epoch,
    )
    # Both outputs or neither: a failed descriptor write must not leave the layer behind.
    with staged_outputs([args.output_layer, args.output_descriptor]) as (layer_path, descriptor_path):
        blob = build_files_layer(args.files, options, layer_path, descriptor_path)
    print(f"{args.output_layer}: {blob.digest} ({blob.size} bytes, {len(args.files)} files)")
    return 0
