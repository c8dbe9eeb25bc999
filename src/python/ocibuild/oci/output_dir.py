"""All-or-nothing output folders: build in a sibling temp folder, then swap it into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ocibuild.errors import OciBuildError


@contextlib.contextmanager
def staged_output_dir(path: Path) -> Iterator[Path]:
    """Yield an empty folder beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OciBuildError(f"{path}: exists and is not a folder; pick another output folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    except OSError as e:
        raise OciBuildError(
            f"{path}: cannot create the output folder ({e.strerror}); check the path"
        ) from None
    try:
        yield staging
        os.chmod(staging, 0o755)
        if path.exists() and any(path.iterdir()):
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / "previous")
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)  # an empty folder may be replaced by a rename
    finally:
        if staging.exists():
            shutil.rmtree(staging)
