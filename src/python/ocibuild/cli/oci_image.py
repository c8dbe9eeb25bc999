"""`python -m ocibuild oci-image --request request.json [--output-dir OUT]`: assemble an OCI image.

The request is an ocibuild.contract.OciImageRequest (docs/oci-image.md); the outputs go to its
`output_dir` (default `out`) unless --output-dir says otherwise. Prints the image digest (what the
layout's index.json points at) on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from ocibuild.contract import OciImageRequest, read_request_file
from ocibuild.oci.image import build_image
from ocibuild.oci.request import image_request

__all__ = ["main"]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocibuild oci-image", description=__doc__)
    parser.add_argument(
        "--request", required=True, type=Path, help="the request JSON (see docs/oci-image.md)"
    )
    parser.add_argument("--output-dir", type=Path, help="folder to write layout/ and archives into")
    args = parser.parse_args(argv)
    request = read_request_file(OciImageRequest, str(args.request))
    output_dir = args.output_dir or Path(request.output_dir)
    result = build_image(image_request(request, args.request.parent), output_dir)
    print(result.digest)
    return 0
