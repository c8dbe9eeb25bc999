"""All-or-nothing output folders: built beside their final path, swapped in only when complete.

A thin wrapper over ocibuild.common.atomic.staged_outputs, the one mechanism every command uses.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ocibuild.common.atomic import staged_outputs

__all__ = ["staged_output_dir"]


@contextlib.contextmanager
def staged_output_dir(path: Path) -> Iterator[Path]:
    """Yield an empty folder beside `path`; on success it replaces `path`, on error it is removed."""
    with staged_outputs(folders=[str(path)]) as (staging,):
        yield Path(staging)
