"""An image's OCI 1.1 referrers: from the registry's referrers API, or from the `sha256-<hex>` tag fallback."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from ocibuild.errors import OciBuildError
from ocibuild.registry.client import RegistryClient
from ocibuild.sign.bundle import OCI_INDEX, referrers_tag


def list_referrers(client: RegistryClient, repository: str, image_digest: str) -> List[Dict[str, Any]]:
    """The descriptors of the manifests whose `subject` is `image_digest` (may be empty)."""
    index = client.referrers(repository, image_digest)
    if index is None:  # no referrers API (distribution 2.8): the referrers tag schema
        tag = referrers_tag(image_digest)
        fallback = client.get_manifest(repository, tag, accept=(OCI_INDEX,))
        if fallback is None:
            return []
        try:
            index = json.loads(fallback.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise OciBuildError(
                f"{client.registry}/{repository}:{tag}: the referrers tag does not hold JSON"
            ) from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise OciBuildError(
            f"{client.registry}/{repository}: the referrers index of {image_digest} has no manifests list"
        )
    return [d for d in manifests if isinstance(d, dict)]
