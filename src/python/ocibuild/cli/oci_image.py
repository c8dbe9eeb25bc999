"""`python -m ocibuild oci-image --request request.json --output-dir OUT`: assemble an OCI image.

Prints the image digest (what the layout's index.json points at) on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from ocibuild.oci.image import build_image
from ocibuild.oci.request import load_request


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocibuild oci-image", description=__doc__)
    parser.add_argument(
        "--request", required=True, type=Path, help="the request JSON (see docs/oci-image.md)"
    )
    parser.add_argument(
        "--output-dir", required=True, type=Path, help="folder to write layout/ and archives into"
    )
    args = parser.parse_args(argv)
    result = build_image(load_request(args.request), args.output_dir)
    print(result.digest)
    return 0
