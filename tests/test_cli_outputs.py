"""Every command of `python -m ocibuild` leaves its outputs complete or absent, never partial.

The writes are made to fail for real (an output path taken by a folder, a read-only folder) or by
making the second output's write or final move fail; then no output of the command may remain,
no staging file may be left, and outputs of an earlier run must be as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import ocibuild.common.atomic as atomic
import pytest
from ocibuild.__main__ import main
from ocibuild.apk.lockfile import dump_lockfile
from ocibuild.common.atomic import staged_outputs, write_bytes_atomically
from ocibuild.errors import OciBuildError
from testutil.apk_layers import ALPINE_KEY, ALPINE_REPO, alpine_lock, alpine_packages_dir
from testutil.oci_layers import write_layer
from testutil.paths import apk_mirror


def _tree(root: Path) -> Dict[str, bytes]:
    """Every file and folder under root (folders as b"/"), hidden staging names included."""
    out: Dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = b"/"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def _fail_replace_onto(monkeypatch, name: str) -> None:
    """Make the final move onto an output called `name` fail like a full disk (putting back an old one works)."""
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == name and os.path.basename(src) != "previous":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


# ---- the mechanism ---------------------------------------------------------------------------------


def test_staged_outputs_all_or_nothing(tmp_path: Path) -> None:
    a, b, d = tmp_path / "a.bin", tmp_path / "b.json", tmp_path / "dir"
    with staged_outputs([str(a), str(b)], folders=[str(d)]) as (sa, sb, sd):
        Path(sa).write_bytes(b"A")
        write_bytes_atomically(sb, b"B")  # a writer that itself writes atomically onto the staged path
        (Path(sd) / "f").write_bytes(b"F")
        assert not a.exists() and not b.exists() and not d.exists()
    assert _tree(tmp_path) == {"a.bin": b"A", "b.json": b"B", "dir": b"/", "dir/f": b"F"}
    assert (a.stat().st_mode & 0o777, d.stat().st_mode & 0o777) == (0o644, 0o755)

    with pytest.raises(RuntimeError):
        with staged_outputs([str(a), str(tmp_path / "new")], folders=[str(d)]) as (sa, sn, sd):
            Path(sa).write_bytes(b"A2")
            Path(sn).write_bytes(b"N")
            raise RuntimeError("the second output failed")
    assert _tree(tmp_path) == {"a.bin": b"A", "b.json": b"B", "dir": b"/", "dir/f": b"F"}


def test_a_failed_move_undoes_the_others_and_keeps_the_old_outputs(tmp_path: Path, monkeypatch) -> None:
    a, b, d = tmp_path / "a.bin", tmp_path / "b.json", tmp_path / "dir"
    with staged_outputs([str(a), str(b)], folders=[str(d)]) as (sa, sb, sd):
        Path(sa).write_bytes(b"old A")
        Path(sb).write_bytes(b"old B")
    before = _tree(tmp_path)
    _fail_replace_onto(monkeypatch, "b.json")
    with pytest.raises(OciBuildError) as e:
        with staged_outputs([str(a), str(b)], folders=[str(d)]) as (sa, sb, sd):
            Path(sa).write_bytes(b"new A")
            Path(sb).write_bytes(b"new B")
    assert str(e.value) == (
        f"{b}: cannot write the output file (No space left on device); check the path;"
        " nothing was written (nor any other output of this step)"
    )
    assert _tree(tmp_path) == before  # a.bin was moved into place, then taken back; no staging left


def test_staging_paths_in_errors_are_reported_as_the_outputs(tmp_path: Path) -> None:
    out = tmp_path / "layer.json"
    with pytest.raises(OciBuildError, match=rf"^{out}: broken$"):
        with staged_outputs([str(out)]) as (staging,):
            raise OciBuildError(f"{staging}: broken")
    with pytest.raises(OciBuildError, match="given for two outputs"):
        with staged_outputs([str(out), str(tmp_path / "." / "layer.json")]):
            pass
    assert _tree(tmp_path) == {}


# ---- apk-layer ---------------------------------------------------------------------------------------


def _apk_layer(tmp_path: Path, out: Path, descriptor: Optional[Path] = None) -> int:
    lockfile = tmp_path / "lock.json"
    if not lockfile.exists():
        lockfile.write_text(dump_lockfile(alpine_lock(("alpine-release",))))
    return main(
        [
            "apk-layer",
            f"--lockfile={lockfile}",
            "--arch=x86_64",
            f"--packages-dir={alpine_packages_dir()}",
            f"--output-layer={out / 'layer.tar.gz'}",
            f"--output-descriptor={descriptor or out / 'layer.json'}",
        ]
    )


def _files_layer(tmp_path: Path, out: Path, descriptor: Optional[Path] = None) -> int:
    source = tmp_path / "hello.sh"
    source.write_text("#!/bin/sh\necho hello\n")
    return main(
        [
            "files-layer",
            "--destination=/usr/local/bin",
            f"--output-layer={out / 'layer.tar.gz'}",
            f"--output-descriptor={descriptor or out / 'layer.json'}",
            str(source),
        ]
    )


LAYER_COMMANDS = {
    "apk-layer": (_apk_layer, "ocibuild.layer.apk_layer"),
    "files-layer": (_files_layer, "ocibuild.layer.files_layer"),
}


@pytest.mark.parametrize("command", sorted(LAYER_COMMANDS))
def test_layer_command_whose_descriptor_write_fails_leaves_no_layer(
    command: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    run, module = LAYER_COMMANDS[command]
    out = tmp_path / "out"

    def failing_write(path, data, mode=0o644):
        Path(path).write_bytes(data[:10])  # a partial write, then the disk is full
        raise OciBuildError(f"{path}: cannot write the output file (No space left on device); check the path")

    monkeypatch.setattr(f"{module}.write_bytes_atomically", failing_write)
    assert run(tmp_path, out) == 1
    assert capsys.readouterr().err == (
        f"error: {out / 'layer.json'}: cannot write the output file (No space left on device); check the path\n"
    )
    assert _tree(out) == {}  # not layer.tar.gz, not a staging file


@pytest.mark.parametrize("command", sorted(LAYER_COMMANDS))
def test_layer_command_whose_descriptor_move_fails_keeps_the_previous_pair(
    command: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    run, _ = LAYER_COMMANDS[command]
    out = tmp_path / "out"
    out.mkdir()
    (out / "layer.tar.gz").write_bytes(b"previous layer")
    (out / "layer.json").write_bytes(b"previous descriptor")
    _fail_replace_onto(monkeypatch, "layer.json")
    assert run(tmp_path, out) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: {out / 'layer.json'}: cannot write the output file (No space left on device)"
    )
    assert err.count("\n") == 1
    assert _tree(out) == {"layer.tar.gz": b"previous layer", "layer.json": b"previous descriptor"}


@pytest.mark.parametrize("command", sorted(LAYER_COMMANDS))
def test_layer_command_with_descriptor_path_taken_by_a_folder(command: str, tmp_path: Path, capsys) -> None:
    run, _ = LAYER_COMMANDS[command]
    out = tmp_path / "out"
    (out / "layer.json").mkdir(parents=True)
    (out / "layer.json" / "keep").write_text("x")
    assert run(tmp_path, out) == 1
    assert capsys.readouterr().err == (
        f"error: {out / 'layer.json'}: is a folder, expected an output file; pick another output path\n"
    )
    assert _tree(out) == {"layer.json": b"/", "layer.json/keep": b"x"}


@pytest.mark.parametrize("command", sorted(LAYER_COMMANDS))
def test_layer_command_whose_descriptor_folder_cannot_be_made(command: str, tmp_path: Path, capsys) -> None:
    run, _ = LAYER_COMMANDS[command]
    out = tmp_path / "out"
    out.mkdir()
    (out / "layer.json").write_text("a file where the folder should be")
    assert run(tmp_path, out, out / "layer.json" / "layer.json") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'layer.json' / 'layer.json'}: cannot create the output file (")
    assert _tree(out) == {"layer.json": b"a file where the folder should be"}  # no layer.tar.gz


@pytest.mark.parametrize("command", sorted(LAYER_COMMANDS))
def test_layer_command_success_writes_both(command: str, tmp_path: Path) -> None:
    run, _ = LAYER_COMMANDS[command]
    out = tmp_path / "out"
    assert run(tmp_path, out) == 0
    assert sorted(_tree(out)) == ["layer.json", "layer.tar.gz"]
    assert json.loads((out / "layer.json").read_text())["size"] == (out / "layer.tar.gz").stat().st_size


# ---- oci-image -----------------------------------------------------------------------------------------


def _oci_request(tmp_path: Path) -> Path:
    write_layer(tmp_path / "layers/0/out", {"etc/os": b"x86\n"}, "x86_64", "layer")
    request = {
        "layers": [{"blob": "layers/0/out/layer.tar.gz", "descriptor": "layers/0/out/layer.json"}],
        "repository": "images/app",
        "tag": "latest",
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    return tmp_path / "request.json"


def test_oci_image_whose_last_output_fails_leaves_the_previous_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    request = _oci_request(tmp_path)
    out = tmp_path / "out"
    assert main(["oci-image", f"--request={request}", f"--output-dir={out}"]) == 0
    capsys.readouterr()
    before = _tree(tmp_path)

    import ocibuild.oci.image as image

    def failing_metadata(path, data, mode=0o644):
        Path(path).write_bytes(data[:5])
        raise OciBuildError(f"{path}: cannot write the output file (No space left on device); check the path")

    monkeypatch.setattr(image, "write_bytes_atomically", failing_metadata)
    assert main(["oci-image", f"--request={request}", f"--output-dir={out}"]) == 1
    # The message names the output, not the staging folder it was being built in.
    assert capsys.readouterr().err == (
        f"error: {out / 'image.json'}: cannot write the output file (No space left on device); check the path\n"
    )
    assert _tree(tmp_path) == before

    shutil.rmtree(out)
    assert main(["oci-image", f"--request={request}", f"--output-dir={out}"]) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["layers", "request.json"]


def test_oci_image_whose_final_move_fails_keeps_the_previous_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    request = _oci_request(tmp_path)
    out = tmp_path / "out"
    assert main(["oci-image", f"--request={request}", f"--output-dir={out}"]) == 0
    (out / "marker").write_text("previous build")
    before = _tree(tmp_path)
    real_replace = os.replace

    def replace(src, dst):
        if os.fspath(dst) == str(out) and ".out.tmp-" in os.fspath(src):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    capsys.readouterr()
    assert main(["oci-image", f"--request={request}", f"--output-dir={out}"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {out}: cannot write the output folder (No space left")
    assert _tree(tmp_path) == before


# ---- apk-lock ------------------------------------------------------------------------------------------


def _apk_lock(tmp_path: Path, output: Path) -> int:
    spec = tmp_path / "apko.yaml"
    keys = apk_mirror() / "keys"
    spec.write_text(
        f"contents:\n  repositories: [{ALPINE_REPO}]\n  keyring: [{keys / ALPINE_KEY}]\n"
        "  packages: [alpine-release]\narchs: [x86_64]\n"
    )
    mirror = f"--mirror=https://dl-cdn.alpinelinux.org/alpine/=file://{apk_mirror() / 'alpine'}/"
    return main(["apk-lock", f"--spec={spec}", f"--output={output}", mirror])


def test_apk_lock_with_the_output_taken_by_a_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lock"
    (out / "apko.lock.json").mkdir(parents=True)
    assert _apk_lock(tmp_path, out / "apko.lock.json") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out / "apko.lock.json") in err and err.count("\n") == 1
    assert _tree(out) == {"apko.lock.json": b"/"}


def test_apk_lock_whose_write_fails_keeps_the_previous_lock(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "lock"
    out.mkdir()
    (out / "apko.lock.json").write_bytes(b"previous lock")
    _fail_replace_onto(monkeypatch, "apko.lock.json")
    assert _apk_lock(tmp_path, out / "apko.lock.json") == 1
    err = capsys.readouterr().err.splitlines()[-1]  # after a note that the old lock is unreadable
    assert err.startswith(f"error: {out / 'apko.lock.json'}: cannot write the output file (No space left")
    assert _tree(out) == {"apko.lock.json": b"previous lock"}
    monkeypatch.undo()
    assert _apk_lock(tmp_path, out / "apko.lock.json") == 0
    assert sorted(_tree(out)) == ["apko.lock.json"]
