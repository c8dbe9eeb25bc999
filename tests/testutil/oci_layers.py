"""Test layers for the OCI image tests: small gzip'd tars built with tarfile, and their `layer.json`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Dict, Optional, Tuple

from testutil.tars import member_bytes

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def tar_bytes(files: Dict[str, bytes]) -> bytes:
    """An uncompressed tar of `files` (parent folders added), entries sorted, mtime 0."""
    buf = io.BytesIO()
    dirs = sorted({"/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)})
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def write_layer(
    folder: Path, files: Dict[str, bytes], architecture: Optional[str] = None, name: str = "layer"
) -> Tuple[Path, Path]:
    """Write `<name>.tar.gz` and `<name>.json` (the layer builders' descriptor) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = tar_bytes(files)
    blob = gzip.compress(raw, mtime=0)
    blob_path = folder / f"{name}.tar.gz"
    blob_path.write_bytes(blob)
    descriptor: Dict[str, object] = {
        "architecture": architecture,
        "diff_id": "sha256:" + hashlib.sha256(raw).hexdigest(),
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        "media_type": LAYER_MEDIA_TYPE,
        "packages": [],
    }
    descriptor_path = folder / f"{name}.json"
    descriptor_path.write_text(json.dumps(descriptor, sort_keys=True))
    return blob_path, descriptor_path


def apk_files(apk: Path) -> Dict[str, bytes]:
    """The regular files a real `.apk` installs (its data member), for layers with genuine content."""
    files = {}
    with gzip.open(apk, "rb") as stream, tarfile.open(
        fileobj=stream, mode="r|", ignore_zeros=True  # type: ignore[arg-type]  # typeshed: GzipFile is no IO[bytes]
    ) as tar:
        for member in tar:
            if member.isfile() and not member.name.startswith("."):
                files[member.name] = member_bytes(tar, member)
    return files


def layer_input(
    folder: Path,
    files: Dict[str, bytes],
    architecture: Optional[str] = None,
    name: str = "layer",
    created_by: str = "",
):
    """A checked `LayerInput` for `build_image`, from a fresh layer in `folder`."""
    from ocibuild.oci.layers import load_layer_input

    blob, descriptor = write_layer(folder, files, architecture, name)
    return load_layer_input(blob, descriptor, architecture, created_by or f"test layer {name}")


def mirror_apk(arch: str, filename: str) -> Path:
    """A package of the offline mirror: v3.19 for x86_64, v3.13 for aarch64 (all the mirror has)."""
    from testutil.paths import apk_mirror

    release = {"x86_64": "v3.19", "aarch64": "v3.13"}[arch]
    return apk_mirror() / "alpine" / release / "main" / arch / filename


CA_BUNDLE = {
    "x86_64": "ca-certificates-bundle-20230506-r0.apk",
    "aarch64": "ca-certificates-bundle-20191127-r5.apk",
}


def tree_bytes(root: Path) -> Dict[str, bytes]:
    """Every file under `root` by relative path: for comparing two builds byte for byte."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
