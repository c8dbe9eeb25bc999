"""Small OCI layouts for the registry tests, built with the core, and skopeo to read pushes back."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ocibuild.oci.image import ImageRequest, build_image
from testutil.oci_layers import layer_input
from testutil.servers import require_tool


def noise(seed: int, size: int) -> bytes:
    """Incompressible, reproducible bytes: layers that stay `size`-ish once gzip'd."""
    return random.Random(seed).getrandbits(8 * size).to_bytes(size, "little")


def build_layout(
    folder: Path,
    repository: str,
    layers: Sequence[Dict[str, bytes]],
    *,
    architectures: Sequence[str] = ("x86_64",),
    base: Optional[Path] = None,
    base_name: Optional[str] = None,
    tag: str = "latest",
) -> Tuple[Path, str]:
    """(layout folder, top digest) of an image with one layer per `layers` entry and architecture."""
    inputs = []
    for n, files in enumerate(layers):
        for arch in architectures:
            arch_files = (
                {name: data + arch.encode() for name, data in files.items()}
                if len(architectures) > 1
                else files
            )
            inputs.append(layer_input(folder / "in", arch_files, arch, f"layer{n}-{arch}"))
    request = ImageRequest(
        repository=repository,
        tag=tag,
        layers=tuple(inputs),
        base=base,
        base_name=base_name,
        architectures=tuple(architectures),
    )
    result = build_image(request, folder / "out")
    return folder / "out" / "layout", result.digest


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def skopeo_raw(reference: str) -> bytes:
    """The manifest bytes the registry serves for `reference` (host:port/repo:tag), via skopeo."""
    result = subprocess.run(
        [require_tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def skopeo_copy_back(reference: str, destination: Path, authfile: Optional[Path] = None) -> str:
    """Copy `reference` (with every platform) into a new OCI layout; returns the digest it points at."""
    auth = [f"--src-authfile={authfile}"] if authfile else []
    result = subprocess.run(
        [
            require_tool("skopeo"),
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            *auth,
            f"docker://{reference}",
            f"oci:{destination}:copied",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads((destination / "index.json").read_text())["manifests"]
    return entry["digest"]


def layout_blob_digests(layout: Path) -> List[str]:
    return sorted("sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir())
