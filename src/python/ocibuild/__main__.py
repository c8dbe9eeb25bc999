"""`python -m ocibuild <command> ...`: the entry point the Pants rules run inside cached Processes."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Sequence

from ocibuild.errors import OciBuildError

__all__ = ["COMMANDS", "main"]

# command name -> module under ocibuild.cli exposing `main(argv) -> int`
COMMANDS = {
    "apk-lock": "apk_lock",
    "apk-layer": "apk_layer",
    "fetch-apk": "fetch_apk",
    "oci-image": "oci_image",
    "files-layer": "files_layer",
    "oci-verify": "verify",
    "push": "push",
}


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m ocibuild {{{','.join(sorted(COMMANDS))}}} ...", file=sys.stderr)
        return 2
    # The core warns through logging (e.g. a skipped index entry); the user sees one line each.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s: %(message)s")
    module = importlib.import_module(f"ocibuild.cli.{COMMANDS[argv[0]]}")
    try:
        return int(module.main(list(argv[1:])))
    except OciBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
