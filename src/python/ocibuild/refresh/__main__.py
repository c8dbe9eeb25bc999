"""`python -m ocibuild.refresh`: the nightly pipeline (ocibuild/refresh/pipeline.py)."""

import sys

from ocibuild.refresh.pipeline import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
