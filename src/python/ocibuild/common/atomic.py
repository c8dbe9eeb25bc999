"""All-or-nothing outputs: every command's outputs are complete or absent, never partial.

One mechanism for files and folders, for one output or several: each output is built under a
staging name beside it (same folder, so the final move is a rename), and only when everything was
built are the outputs moved into place together. If building or any move fails, no new output is
left behind, an output that existed before is put back as it was, and no staging file remains.

    with staged_outputs([layer_path, descriptor_path]) as (layer_tmp, descriptor_tmp):
        ...write both...           # an exception here leaves neither output
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import BinaryIO, Iterator, List, Optional, Sequence, Tuple

from ocibuild.errors import OciBuildError

__all__ = ["staged_outputs", "atomic_output", "write_bytes_atomically"]

_FILE_MODE = 0o644
_FOLDER_MODE = 0o755


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _kind(folder: bool) -> str:
    return "folder" if folder else "file"


def _check_target(target: str, folder: bool) -> None:
    if folder and os.path.lexists(target) and not os.path.isdir(target):
        raise OciBuildError(f"{target}: exists and is not a folder; pick another output folder")
    if not folder and os.path.isdir(target):
        raise OciBuildError(f"{target}: is a folder, expected an output file; pick another output path")


def _make_staging(target: str, folder: bool) -> str:
    directory = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(os.path.abspath(target))
    try:
        os.makedirs(directory, exist_ok=True)
        if folder:
            return tempfile.mkdtemp(dir=directory, prefix=f".{name}.tmp-")
        fd, staging = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + name)
        os.close(fd)
        return staging
    except OSError as e:
        raise OciBuildError(
            f"{target}: cannot create the output {_kind(folder)} ({e.strerror}); check the path"
        ) from None


def _commit(outputs: Sequence[Tuple[str, bool]], stagings: Sequence[str], mode: int) -> None:
    """Move every staging into place; on a failure undo the moves already made and restore old outputs."""
    backups: List[Tuple[str, str]] = []  # (target, folder holding the previous output as "previous")
    placed: List[str] = []
    current: Optional[Tuple[str, bool]] = None
    try:
        for (target, folder), staging in zip(outputs, stagings):
            current = (target, folder)
            os.chmod(staging, _FOLDER_MODE if folder else mode)
            if os.path.lexists(target):
                aside = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(target)), prefix=".old-")
                os.replace(target, os.path.join(aside, "previous"))
                backups.append((target, aside))
            os.replace(staging, target)
            placed.append(target)
    except OSError as e:
        for target in placed:
            _remove(target)
        for target, aside in backups:
            with contextlib.suppress(OSError):
                os.replace(os.path.join(aside, "previous"), target)
                os.rmdir(aside)
        assert current is not None
        others = " (nor any other output of this step)" if len(outputs) > 1 else ""
        raise OciBuildError(
            f"{current[0]}: cannot write the output {_kind(current[1])} ({e.strerror}); check the path;"
            f" nothing was written{others}"
        ) from None
    for _, aside in backups:
        with contextlib.suppress(OSError):
            shutil.rmtree(aside)


@contextlib.contextmanager
def staged_outputs(
    files: Sequence[str] = (), folders: Sequence[str] = (), mode: int = _FILE_MODE
) -> Iterator[List[str]]:
    """Yield a staging path for each output, files first then folders, beside its final path.

    Staged files exist (empty) and may be overwritten or replaced; staged folders are empty.
    When the block finishes, all outputs replace their final paths together; if it raises, or a
    move fails, no output of the block is left and earlier versions are kept. Modes are fixed
    (files `mode`, folders 0755), not taken from the umask, so that outputs look the same everywhere.
    An OciBuildError from the block that mentions a staging path is re-raised naming the output.
    """
    outputs = [(os.fspath(p), False) for p in files] + [(os.fspath(p), True) for p in folders]
    seen = set()
    for target, folder in outputs:
        if os.path.abspath(target) in seen:
            raise OciBuildError(f"{target}: given for two outputs; give each output its own path")
        seen.add(os.path.abspath(target))
        _check_target(target, folder)
    stagings: List[str] = []
    try:
        for target, folder in outputs:
            stagings.append(_make_staging(target, folder))
        try:
            yield list(stagings)
        except OciBuildError as e:
            message = str(e)
            for (target, _), staging in zip(outputs, stagings):
                message = message.replace(staging, target)
            if message != str(e):
                raise OciBuildError(message) from None
            raise
        for target, folder in outputs:
            _check_target(target, folder)  # again: something may have taken the path meanwhile
        _commit(outputs, stagings, mode)
    finally:
        for staging in stagings:
            _remove(staging)


@contextlib.contextmanager
def atomic_output(path: str, mode: int = _FILE_MODE) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block finishes without an exception."""
    with staged_outputs([path], mode=mode) as (staging,):
        with open(staging, "wb") as f:
            yield f


def write_bytes_atomically(path: str, data: bytes, mode: int = _FILE_MODE) -> None:
    with atomic_output(path, mode) as f:
        f.write(data)
