"""SPDX 2.3 JSON SBOMs of images built by ocibuild, from `ocibuild.sbom.facts` (docs/sbom.md).

One document per platform image: DESCRIBES the image, which CONTAINS its layers and the operating
system (/etc/os-release); an APK layer CONTAINS its packages, a files layer its files; a package
DEPENDS_ON the packages it needs; the image is a DESCENDANT_OF its base. One document per image
index: DESCRIBES the index, which CONTAINS a package per platform image, each pointing at that
image's own document through an `externalDocumentRefs` entry (namespace and sha256).

The bytes are a function of the facts alone: `created` is the facts' epoch, the namespace derives
from the digests, and every list is sorted by a key of the facts.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from ocibuild.common.digests import is_sha256_digest
from ocibuild.errors import OciBuildError
from ocibuild.sbom.facts import FILES, ApkPackageFacts, ImageFacts, IndexFacts, LayerFacts, PlatformSbom
from ocibuild.sbom.licenses import NOASSERTION, spdx_license

SPDX_VERSION = "SPDX-2.3"
DATA_LICENSE = "CC0-1.0"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
CREATOR = "Tool: ocibuild"
NAMESPACE_BASE = "https://spdx.org/spdxdocs/ocibuild"
_NOT_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _hex(digest: str) -> str:
    if not is_sha256_digest(digest):
        raise OciBuildError(
            f"SBOM: {digest!r} is not a sha256 digest (sha256:<64 hex>); pass the manifest's digests"
        )
    return digest.split(":", 1)[1]


def _id(kind: str, readable: str, key: str) -> str:
    """An SPDX element id: readable, and unique through a hash of the exact key."""
    short = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"SPDXRef-{kind}-{_NOT_IDSTRING.sub('-', readable).strip('-')}-{short}"


def _actor(maintainer: str) -> str:
    """apk's `Name <email>` as SPDX's `Person: Name (email)`."""
    name, _, rest = maintainer.partition("<")
    name = name.strip().replace("(", "").replace(")", "")
    email = rest.rstrip("> ").strip()
    if not name and not email:
        return NOASSERTION
    return f"Person: {name or email} ({email})" if email else f"Person: {name}"


def apk_purl(pkg: ApkPackageFacts, distro_version: Optional[str]) -> str:
    """The purl Syft writes for an Alpine package (Grype matches on it): `upstream` names the origin
    when it differs from the package, `distro` is `alpine-<VERSION_ID>`; qualifiers sorted by key."""
    qualifiers = [("arch", pkg.architecture)]
    if distro_version:
        qualifiers.append(("distro", f"alpine-{distro_version}"))
    if pkg.origin and pkg.origin != pkg.name:
        qualifiers.append(("upstream", pkg.origin))
    query = "&".join(f"{k}={quote(v, safe='.-_~')}" for k, v in qualifiers if v)
    return f"pkg:apk/alpine/{quote(pkg.name, safe='.-_~')}@{quote(pkg.version, safe='.-_~')}?{query}"


def oci_purl(image: ImageFacts) -> str:
    """purl-spec's oci type: the last name component, the digest as version, the repository as a qualifier."""
    name = image.repository.rsplit("/", 1)[-1].lower()
    qualifiers = [("arch", image.architecture), ("repository_url", image.repository), ("tag", image.tag)]
    query = "&".join(f"{k}={quote(v, safe='/.-_~:')}" for k, v in qualifiers)
    return f"pkg:oci/{quote(name)}@{quote(image.manifest_digest, safe='')}?{query}"


def _purl_ref(purl: str) -> Dict[str, str]:
    return {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}


def _sha256(hex_value: str) -> List[Dict[str, str]]:
    return [{"algorithm": "SHA256", "checksumValue": hex_value}]


def _unanalysed(spdx_id: str, name: str, **fields: Any) -> Dict[str, Any]:
    """A package whose files are not listed, with SPDX's required fields at NOASSERTION unless given."""
    package: Dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    }
    package.update(fields)
    return package


def _is_url(text: str) -> bool:
    return bool(re.match(r"^(https?|ftp)://[^\s]+$", text))


class _Document:
    def __init__(self, created: int) -> None:
        self.created = _iso(created)
        self.packages: Dict[str, Dict[str, Any]] = {}
        self.files: Dict[str, Dict[str, Any]] = {}
        self.relationships: set = set()
        self.extracted: Dict[str, str] = {}

    def relate(self, a: str, relationship: str, b: str) -> None:
        self.relationships.add((a, relationship, b))

    def annotation(self, comment: str) -> Dict[str, str]:
        return {
            "annotationDate": self.created,
            "annotationType": "OTHER",
            "annotator": CREATOR,
            "comment": comment,
        }

    def render(self, name: str, namespace: str, extra: Optional[Dict[str, Any]] = None) -> bytes:
        doc: Dict[str, Any] = {
            "spdxVersion": SPDX_VERSION,
            "dataLicense": DATA_LICENSE,
            "SPDXID": DOCUMENT_ID,
            "name": name,
            "documentNamespace": namespace,
            "creationInfo": {"created": self.created, "creators": [CREATOR]},
        }
        doc.update(extra or {})
        if self.extracted:
            doc["hasExtractedLicensingInfos"] = [
                {"licenseId": ref, "name": text, "extractedText": text}
                for ref, text in sorted(self.extracted.items())
            ]
        doc["packages"] = [self.packages[k] for k in sorted(self.packages)]
        if self.files:
            doc["files"] = [self.files[k] for k in sorted(self.files)]
        doc["relationships"] = [
            {"spdxElementId": a, "relationshipType": r, "relatedSpdxElement": b}
            for a, r, b in sorted(self.relationships, key=lambda t: (t[0] != DOCUMENT_ID, t))
        ]
        # SPDX JSON keeps its fields in the order written above; indent for people reading it
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def image_namespace(image: ImageFacts) -> str:
    """Unique per image name, tag and manifest: the same image always gets the same namespace."""
    return f"{NAMESPACE_BASE}/image/{quote(image.repository, safe='/')}/{quote(image.tag)}/{_hex(image.manifest_digest)}"


def _apk_id(pkg: ApkPackageFacts) -> str:
    """One element per distinct package: the same package in two layers (a base's and an upper
    apk_layer's) is one element that both layers CONTAIN."""
    return _id(
        "Package-apk",
        f"{pkg.name}-{pkg.version}",
        f"{pkg.name}\0{pkg.version}\0{pkg.architecture}\0{pkg.control_checksum}",
    )


def _apk_package(doc: _Document, pkg: ApkPackageFacts, distro_version: Optional[str]) -> str:
    spdx_id = _apk_id(pkg)
    if spdx_id in doc.packages:
        return spdx_id
    license = spdx_license(pkg.license)
    for ref, text in license.extracted:
        doc.extracted.setdefault(ref, text)
    fields: Dict[str, Any] = {
        "versionInfo": pkg.version,
        "supplier": _actor(pkg.maintainer),
        "originator": _actor(pkg.maintainer),
        "downloadLocation": pkg.download_location
        if pkg.download_location and _is_url(pkg.download_location)
        else NOASSERTION,
        "licenseDeclared": license.expression,
        "externalRefs": [_purl_ref(apk_purl(pkg, distro_version))],
    }
    if pkg.apk_sha256:
        fields["checksums"] = _sha256(pkg.apk_sha256)
    if pkg.url and _is_url(pkg.url):
        fields["homepage"] = pkg.url
    if license.inexact:
        fields["licenseComments"] = f"apk L: {pkg.license}"
    if pkg.origin:
        fields["sourceInfo"] = f"built from the apk origin package {pkg.origin}"
    if pkg.description:
        fields["description"] = pkg.description
    if pkg.control_checksum:
        fields["annotations"] = [
            doc.annotation(
                f"apk control checksum (C:, Q1 = sha1 of the control member): {pkg.control_checksum}"
            )
        ]
    doc.packages[spdx_id] = _unanalysed(spdx_id, pkg.name, **fields)
    return spdx_id


def _verification_code(layer: LayerFacts) -> str:
    """SPDX 2.3 §7.9: sha1 of the sorted, concatenated sha1s of the package's files."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in layer.files)).encode("ascii")).hexdigest()


def _layer(doc: _Document, image_id: str, position: int, layer: LayerFacts, image: ImageFacts) -> None:
    layer_id = _id("Layer", str(position), f"{position}\0{layer.digest}")
    comment = f"layer {position} of {image.repository}:{image.tag} ({image.platform}), {layer.kind} layer, diff_id {layer.diff_id}"
    if layer.from_base and image.base is not None:
        comment += f", from the base image {image.base.reference}"
    fields: Dict[str, Any] = {
        "versionInfo": layer.digest,
        "checksums": _sha256(_hex(layer.digest)),
        "primaryPackagePurpose": "ARCHIVE",
        "comment": comment,
    }
    if layer.created_by:
        fields["sourceInfo"] = layer.created_by
    distro_version = (
        image.os_release.version_id if image.os_release and image.os_release.id == "alpine" else None
    )
    if layer.kind == FILES:
        fields["filesAnalyzed"] = True
        fields["packageVerificationCode"] = {"packageVerificationCodeValue": _verification_code(layer)}
        for f in layer.files:
            file_id = _id("File", f.path, f"{position}\0{f.path}")
            doc.files[file_id] = {
                "SPDXID": file_id,
                "fileName": f"./{f.path}",
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": f.sha1},
                    {"algorithm": "SHA256", "checksumValue": f.sha256},
                ],
                "licenseConcluded": NOASSERTION,
                "copyrightText": NOASSERTION,
            }
            doc.relate(layer_id, "CONTAINS", file_id)
    doc.packages[layer_id] = _unanalysed(layer_id, f"{image.repository} layer {position}", **fields)
    doc.relate(image_id, "CONTAINS", layer_id)
    names = {p.name: _apk_package(doc, p, distro_version) for p in layer.packages}
    for pkg in layer.packages:
        doc.relate(layer_id, "CONTAINS", names[pkg.name])


def _image_package(image: ImageFacts, spdx_id: str, extra_comment: str = "") -> Dict[str, Any]:
    return _unanalysed(
        spdx_id,
        f"{image.repository}:{image.tag}",
        versionInfo=image.manifest_digest,
        checksums=_sha256(_hex(image.manifest_digest)),
        primaryPackagePurpose="CONTAINER",
        externalRefs=[_purl_ref(oci_purl(image))],
        comment=f"platform {image.platform}, config {image.config_digest}{extra_comment}",
    )


def image_sbom(image: ImageFacts) -> bytes:
    """The SPDX 2.3 JSON document of one platform image."""
    doc = _Document(image.created)
    image_id = _id("Image", image.repository, image.manifest_digest)
    doc.packages[image_id] = _image_package(image, image_id)
    doc.relate(DOCUMENT_ID, "DESCRIBES", image_id)
    by_name: Dict[str, str] = {}
    for position, layer in enumerate(image.layers):
        _layer(doc, image_id, position, layer, image)
        for pkg in layer.packages:  # an upper layer's package of the same name is the one installed
            by_name[pkg.name] = _apk_id(pkg)
    for layer in image.layers:
        for pkg in layer.packages:
            for dep in pkg.depends:
                if dep in by_name:
                    doc.relate(by_name[pkg.name], "DEPENDS_ON", by_name[dep])
    if image.os_release is not None:
        osr = image.os_release
        os_id = _id("OperatingSystem", osr.id, f"{osr.id}\0{osr.version_id}")
        fields: Dict[str, Any] = {"versionInfo": osr.version_id, "primaryPackagePurpose": "OPERATING-SYSTEM"}
        if osr.pretty_name or osr.name:
            fields["description"] = osr.pretty_name or osr.name
        if osr.home_url and _is_url(osr.home_url):
            fields["homepage"] = osr.home_url
        fields["sourceInfo"] = "/etc/os-release"
        doc.packages[os_id] = _unanalysed(os_id, osr.id, **fields)
        doc.relate(image_id, "CONTAINS", os_id)
    if image.base is not None:
        base_id = _id("BaseImage", image.base.reference, image.base.digest)
        doc.packages[base_id] = _unanalysed(
            base_id,
            image.base.reference,
            versionInfo=image.base.digest,
            checksums=_sha256(_hex(image.base.digest)),
            primaryPackagePurpose="CONTAINER",
            comment=f"the base image ({image.platform}); its layers are this image's first layers",
        )
        doc.relate(image_id, "DESCENDANT_OF", base_id)
    return doc.render(f"{image.repository}:{image.tag} ({image.platform})", image_namespace(image))


def platform_sbom(image: ImageFacts, document: bytes) -> PlatformSbom:
    """What the index SBOM needs to know of a platform document written by `image_sbom`."""
    return PlatformSbom(image, image_namespace(image), hashlib.sha256(document).hexdigest())


def index_namespace(index: IndexFacts) -> str:
    return f"{NAMESPACE_BASE}/index/{quote(index.repository, safe='/')}/{quote(index.tag)}/{_hex(index.index_digest)}"


def index_sbom(index: IndexFacts) -> bytes:
    """The SPDX 2.3 JSON document of an image index: the index CONTAINS one package per platform
    image (the same element id and purl as in that image's document), and each links its document."""
    doc = _Document(index.created)
    index_id = _id("ImageIndex", index.repository, index.index_digest)
    doc.packages[index_id] = _unanalysed(
        index_id,
        f"{index.repository}:{index.tag}",
        versionInfo=index.index_digest,
        checksums=_sha256(_hex(index.index_digest)),
        primaryPackagePurpose="CONTAINER",
        comment="image index; " + ", ".join(sorted(p.image.platform for p in index.platforms)),
    )
    doc.relate(DOCUMENT_ID, "DESCRIBES", index_id)
    refs: List[Tuple[str, Dict[str, Any]]] = []
    for platform in sorted(index.platforms, key=lambda p: p.image.platform):
        image = platform.image
        image_id = _id("Image", image.repository, image.manifest_digest)
        doc_ref = "DocumentRef-" + _NOT_IDSTRING.sub("-", image.platform)
        doc.packages[image_id] = _image_package(image, image_id, f"; its SBOM: {doc_ref}")
        doc.relate(index_id, "CONTAINS", image_id)
        refs.append(
            (
                doc_ref,
                {
                    "externalDocumentId": doc_ref,
                    "spdxDocument": platform.document_namespace,
                    "checksum": {"algorithm": "SHA256", "checksumValue": platform.sha256},
                },
            )
        )
    extra = {"externalDocumentRefs": [ref for _, ref in sorted(refs, key=lambda r: r[0])]}
    return doc.render(f"{index.repository}:{index.tag} (index)", index_namespace(index), extra)
