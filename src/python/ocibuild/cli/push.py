"""`python -m ocibuild push --layout DIR --repository REG/REPO [--tag T ...]`: push an image layout.

Every `--repository` (several registries, or several repositories of one) gets the blobs, the
per-platform manifests and the index; then, with `--sign-key`, every manifest digest is signed in
every repository, and with `--attach-sbom DIR` too (oci-image's `sbom/` folder) each platform
manifest gets its SBOM as a signed SPDX attestation (docs/sbom.md); tags are moved last. Progress goes to stderr; stdout gets one
`pushed REGISTRY/REPOSITORY:TAG@sha256:...` line per reference (`REGISTRY/REPOSITORY@sha256:...`
without tags). Credentials: see ocibuild/registry/credentials.py (OCI_REGISTRY_USERNAME/PASSWORD,
per-registry variables, Docker's config.json and credential helpers).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

from ocibuild.errors import OciBuildError
from ocibuild.oci.descriptors import DOCKER_MANIFEST, MANIFEST
from ocibuild.registry.client import DEFAULT_CHUNK_THRESHOLD, RegistryClient
from ocibuild.registry.credentials import default_credentials
from ocibuild.registry.push import LayoutContent, PushTarget, SignHook, describe, push_layout, read_layout
from ocibuild.registry.reference import split_repository

_MANIFEST_TYPES = (MANIFEST, DOCKER_MANIFEST)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _signer(
    key_path: Path, password_env: Optional[str], signature_format: str, sbom_dir: Optional[Path]
) -> SignHook:
    # Imported only when signing: a plain push needs none of the signing code.
    from ocibuild.sign.attach import sign_image
    from ocibuild.sign.attest import attach_sbom, sboms_by_manifest
    from ocibuild.sign.keys import load_signing_key

    # An unset variable means no password: unencrypted keys need none, and for an encrypted one
    # the key loader's error gets the variable's name added.
    unset = bool(password_env) and password_env not in os.environ
    password = os.environ[password_env].encode("utf-8") if password_env and not unset else None
    try:
        key = load_signing_key(key_path, password)
    except OciBuildError as e:
        if unset:
            raise OciBuildError(f"{e} ({password_env} is not set)") from None
        raise

    sboms: Dict[str, bytes] = sboms_by_manifest(sbom_dir) if sbom_dir is not None else {}

    def sign(client: RegistryClient, repository: str, digest: str, docker_reference: str) -> str:
        line = sign_image(client, repository, digest, docker_reference, key, signature_format)
        if digest in sboms:
            line += "; " + attach_sbom(
                client, repository, digest, docker_reference, key, sboms[digest], signature_format
            )
        return line

    return sign


def _platform_manifests(content: LayoutContent) -> List[str]:
    """The layout's image manifests: what gets an SBOM each (an index's SBOM is not attested)."""
    return [m.descriptor.digest for m in content.manifests if m.descriptor.media_type in _MANIFEST_TYPES]


def _check_sboms_cover(sbom_dir: Path, manifests: List[str]) -> None:
    """Every platform manifest has its SBOM, and no SBOM is of another image (a stale folder)."""
    from ocibuild.sign.attest import sboms_by_manifest

    described = set(sboms_by_manifest(sbom_dir))
    missing = [m for m in manifests if m not in described]
    stray = sorted(described - set(manifests))
    if missing or stray:
        raise OciBuildError(
            f"{sbom_dir}: the SBOMs do not match the layout (no SBOM for {', '.join(missing) or 'none'}; "
            f"SBOMs of other images: {', '.join(stray) or 'none'}); build the image again"
        )


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocibuild push", description=__doc__)
    parser.add_argument("--layout", required=True, type=Path, help="the OCI image layout folder to push")
    parser.add_argument(
        "--layout-tag",
        default=None,
        help="the layout's image to push, by its ref.name (default: the only one)",
    )
    parser.add_argument(
        "--repository",
        required=True,
        action="append",
        help="REGISTRY[:PORT]/REPOSITORY to push to (repeat for several)",
    )
    parser.add_argument("--tag", action="append", default=[], help="tag to move to the image (repeatable)")
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk plain http to this registry (loopback test registries)",
    )
    parser.add_argument(
        "--mount-from",
        action="append",
        default=[],
        metavar="REPOSITORY",
        help="another repository of the same registry to mount shared blobs from (repeatable)",
    )
    parser.add_argument(
        "--sign-key", type=Path, default=None, help="sign every pushed manifest with this key"
    )
    parser.add_argument(
        "--sign-key-password-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the key's password",
    )
    parser.add_argument("--signature-format", choices=("simple", "bundle"), default="simple")
    parser.add_argument(
        "--attach-sbom",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --sign-key: attest each platform manifest's SBOM from DIR (oci-image's sbom/ folder)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request before retrying")
    parser.add_argument("--max-attempts", type=int, default=5, help="attempts per request before giving up")
    parser.add_argument(
        "--chunk-threshold",
        type=int,
        default=DEFAULT_CHUNK_THRESHOLD,
        metavar="BYTES",
        help="blobs larger than this are uploaded in PATCH chunks",
    )
    args = parser.parse_args(argv)

    if args.attach_sbom is not None and args.sign_key is None:
        raise OciBuildError("--attach-sbom needs --sign-key: an attestation is signed")
    content = read_layout(args.layout, args.layout_tag)
    if args.attach_sbom is not None:
        _check_sboms_cover(args.attach_sbom, _platform_manifests(content))
    _progress(describe(content))
    credentials = default_credentials()
    clients = {}
    targets = []
    for text in dict.fromkeys(args.repository):
        registry, repository = split_repository(text)
        if registry not in clients:
            clients[registry] = RegistryClient(
                registry,
                insecure=registry in args.insecure_registry,
                credentials=credentials,
                timeout=args.timeout,
                max_attempts=args.max_attempts,
                log=_progress,
                chunk_threshold=args.chunk_threshold,
            )
        targets.append(PushTarget(clients[registry], repository))
    sign = (
        _signer(args.sign_key, args.sign_key_password_env, args.signature_format, args.attach_sbom)
        if args.sign_key is not None
        else None
    )

    def log(line: str) -> None:
        if line.startswith("pushed "):
            print(line, flush=True)
        else:
            _progress(line)

    push_layout(content, targets, args.tag, sign=sign, mount_from=args.mount_from, log=log)
    return 0
