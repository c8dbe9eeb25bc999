"""`python -m ocibuild oci-verify`: check an image's cosign signatures in a registry with a public key.

    --reference REG/REPO@sha256:...          the image to check, or
    --layout DIR --repository REG/REPO       the image an OCI layout holds, as pushed to REG/REPO
    --key cosign.pub                         the ECDSA P-256 public key (PEM)
    --signature-format simple|bundle         cosign's .sig tag (default) or a Sigstore bundle referrer
    --recursive                              for an index, check each platform manifest too
    --attestations                           also check each image manifest's SPDX SBOM attestation
    --sbom-dir DIR                           ... and that it attests the SBOM in DIR (oci-image's sbom/)
    --insecure-registry HOST                 plain http for HOST (repeatable; loopback registries)

Checks what `cosign verify --key cosign.pub --insecure-ignore-tlog` checks (with --attestations,
`cosign verify-attestation --type spdxjson` too) and prints `verified REG/REPO@sha256:... (N
signatures)` per manifest (`, N SBOM attestations`); exit 1 with one line when a check fails.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional

from ocibuild.errors import OciBuildError
from ocibuild.registry.client import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
)
from ocibuild.registry.credentials import default_credentials
from ocibuild.registry.reference import Reference, parse_reference
from ocibuild.sign.keys import load_public_key
from ocibuild.sign.verify import verify_attestations, verify_image
from ocibuild.strictload import load_json

_INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)


def _layout_digest(layout: Path) -> str:
    """The digest index.json points at (the one image the layout holds)."""
    index_file = layout / "index.json"
    try:
        index = load_json(index_file.read_text(encoding="utf-8"), str(index_file))
    except OSError as e:
        raise OciBuildError(
            f"{index_file}: cannot read the layout's index ({e.strerror}); is {layout} an OCI layout?"
        ) from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or len(manifests) != 1 or not isinstance(manifests[0], dict):
        raise OciBuildError(f"{index_file}: expected exactly one image in the layout's index.json")
    return str(manifests[0].get("digest"))


def _target(args: argparse.Namespace) -> Reference:
    if args.reference:
        if args.layout or args.repository:
            raise OciBuildError("give either --reference, or --layout with --repository, not both")
        ref = parse_reference(args.reference)
        if not ref.digest:
            raise OciBuildError(
                f"{args.reference}: verify a digest (REG/REPO@sha256:...), not a tag that can move"
            )
        return ref
    if not (args.layout and args.repository):
        raise OciBuildError(
            "give --reference REG/REPO@sha256:..., or --layout DIR with --repository REG/REPO"
        )
    ref = parse_reference(args.repository)
    if ref.tag or ref.digest:
        raise OciBuildError(f"--repository {args.repository}: give REG/REPO without a tag or digest")
    return ref.with_digest(_layout_digest(args.layout))


def _children(client: RegistryClient, ref: Reference) -> List[str]:
    """The platform manifests of an index (none for a single image)."""
    assert ref.digest
    found = client.get_manifest(ref.repository, ref.digest)
    if found is None:
        raise OciBuildError(f"{ref}: no such manifest in the registry; push it first, or check the reference")
    if found.media_type not in _INDEX_TYPES:
        return []
    try:
        entries = json.loads(found.data.decode("utf-8")).get("manifests") or []
    except (UnicodeDecodeError, ValueError, AttributeError):
        raise OciBuildError(f"{ref}: the image index is not a JSON object with a manifests list") from None
    return [
        str(m["digest"]) for m in entries if isinstance(m, dict) and m.get("mediaType") in _MANIFEST_TYPES
    ]


def _plural(n: int, what: str = "signature") -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _expected_sboms(sbom_dir: Optional[Path]) -> Dict[str, bytes]:
    if sbom_dir is None:
        return {}
    from ocibuild.sign.attest import sboms_by_manifest

    return sboms_by_manifest(sbom_dir)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocibuild oci-verify", description=__doc__.split("\n")[0])
    parser.add_argument("--reference", help="REG/REPO@sha256:... of the image to check")
    parser.add_argument("--layout", type=Path, help="an OCI layout whose image was pushed to --repository")
    parser.add_argument("--repository", help="REG/REPO the layout's image was pushed to")
    parser.add_argument("--key", required=True, type=Path, help="the PEM public key (cosign.pub)")
    parser.add_argument("--signature-format", choices=("simple", "bundle"), default="simple")
    parser.add_argument("--recursive", action="store_true", help="also check each manifest of an index")
    parser.add_argument(
        "--attestations", action="store_true", help="also check each image manifest's SBOM attestation"
    )
    parser.add_argument(
        "--sbom-dir", type=Path, default=None, help="with --attestations: the SBOMs they must attest"
    )
    parser.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST", help="use plain http for HOST"
    )
    args = parser.parse_args(argv)
    if args.sbom_dir is not None and not args.attestations:
        raise OciBuildError("--sbom-dir goes with --attestations")
    expected = _expected_sboms(args.sbom_dir)

    key = load_public_key(args.key)
    target = _target(args)
    client = RegistryClient(
        target.registry, insecure=target.registry in args.insecure_registry, credentials=default_credentials()
    )
    assert target.digest
    children = _children(client, target) if args.recursive or args.attestations else []
    digests: List[str] = [target.digest] + (children if args.recursive else [])
    # Attestations are per image manifest (as cosign attests them): an index's platform manifests.
    attested = set(children or [target.digest]) if args.attestations else set()
    for digest in digests + sorted(attested - set(digests)):
        counts = []
        if digest in digests:
            lines = verify_image(
                client, target.repository, digest, key, args.signature_format, docker_reference=target.name
            )
            counts.append(_plural(len(lines)))
        if digest in attested:
            if expected and digest not in expected:
                raise OciBuildError(f"{args.sbom_dir}: no SBOM of {digest}; build the image again")
            lines = verify_attestations(
                client, target.repository, digest, key, args.signature_format, expected.get(digest)
            )
            counts.append(_plural(len(lines), "SBOM attestation"))
        print(f"verified {target.name}@{digest} ({', '.join(counts)})")
    return 0
