"""`pants publish` for `oci_image`: push the built image layout to every configured registry.

Modelled on Pants' docker backend (`pants.backend.docker.goals.publish`): a `PublishFieldSet`
whose rule returns one `InteractiveProcess` per registry. The process is the core's `push`
command (`python -m ocibuild push`, the registry client lives in the core's PEX, never in Pants'
process): blobs a registry has are skipped or mounted, manifests follow their blobs, the index its
manifests, then signatures (`[oci].signing_key`) and each platform's SBOM as a signed attestation
(docs/sbom.md), and the tags last. Publishing has side effects,
so it is never cached; the image it pushes is the cached `package` output.

`plan_pushes` and `push_argv` are plain functions (tests/plugin/test_plugin_publish.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ocibuild.contract import IMAGE_LAYOUT, SBOM_DIR
from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.base.build_root import BuildRoot
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.engine.addresses import Address
from pants.engine.env_vars import CompleteEnvironmentVars
from pants.engine.process import InteractiveProcess, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants_oci.goals.package import BuiltImage, OciImageFieldSet
from pants_oci.subsystems.oci import OciSubsystem
from pants_oci.subsystems.registries import OciRegistries, OciRegistry
from pants_oci.target_types import (
    OciImageLayersField,
    OciImageRegistriesField,
    OciImageSkipPushField,
    OciImageTagField,
    OciImageTagsField,
)
from pants_oci.util_rules.ocibuild_process import OciBuildPex


@dataclass(frozen=True)
class ImagePush:
    """One registry's share of a publish: `repository` is `address/name`, `tags` in order."""

    registry: OciRegistry
    repository: str
    tags: Tuple[str, ...]

    @property
    def references(self) -> Tuple[str, ...]:
        return tuple(f"{self.repository}:{tag}" for tag in self.tags)


def plan_pushes(
    registries: OciRegistries,
    names: Sequence[str],
    repository: str,
    tags: Sequence[str],
    owner: str,
) -> List[ImagePush]:
    """What to push where: every named registry, each with the target's tags plus its extra ones."""
    plan = []
    for registry in registries.get(*names, owner=owner):
        all_tags = tuple(dict.fromkeys((*tags, *registry.extra_image_tags)))
        plan.append(ImagePush(registry, registry.repository_for(repository), all_tags))
    return plan


@dataclass(frozen=True)
class Signing:
    key_path: str  # absolute
    password_env: str
    signature_format: str


def push_argv(
    layout: str, push: ImagePush, signing: Optional[Signing], sbom_dir: Optional[str] = None
) -> Tuple[str, ...]:
    """The core's push command; with signing, `sbom_dir` (the image's SBOMs) is attested too."""
    argv = ["push", f"--layout={layout}", f"--repository={push.repository}"]
    argv += [f"--tag={tag}" for tag in push.tags]
    if push.registry.insecure:
        argv.append(f"--insecure-registry={push.registry.host}")
    if signing:
        argv += [
            f"--sign-key={signing.key_path}",
            f"--sign-key-password-env={signing.password_env}",
            f"--signature-format={signing.signature_format}",
        ]
        if sbom_dir:
            argv.append(f"--attach-sbom={sbom_dir}")
    return tuple(argv)


def signing_from_options(oci: OciSubsystem, build_root: str) -> Optional[Signing]:
    if not oci.signing_key:
        return None
    return Signing(
        os.path.join(build_root, oci.signing_key),
        oci.signing_key_password_env,
        oci.checked_signature_format(),
    )


# Per-registry CI credentials (`OCI_REGISTRY_<HOST>_USERNAME`, ...) cannot be listed in advance.
CREDENTIAL_ENV_PREFIX = "OCI_REGISTRY_"


def publish_environment(complete: Mapping[str, str], requested: Sequence[str]) -> Dict[str, str]:
    """`[oci].publish_env_vars` (`NAME` or `NAME=value`) plus every `OCI_REGISTRY_*` variable."""
    env = {k: v for k, v in complete.items() if k.startswith(CREDENTIAL_ENV_PREFIX)}
    for entry in requested:
        name, sep, value = entry.partition("=")
        if sep:
            env[name] = value
        elif name in complete:
            env[name] = complete[name]
    return env


def push_environment(
    complete: Mapping[str, str], requested: Sequence[str], signing: Optional[Signing]
) -> Dict[str, str]:
    """What the push process sees: `publish_environment`, plus the signing key's password variable
    whatever `[oci].signing_key_password_env` names it."""
    password_env = (signing.password_env,) if signing else ()
    return publish_environment(complete, (*requested, *password_env))


class PublishOciImageRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishOciImageFieldSet(PublishFieldSet):
    publish_request_type = PublishOciImageRequest
    required_fields = (OciImageRegistriesField, OciImageLayersField)

    registries: OciImageRegistriesField
    tags: OciImageTagsField
    tag: OciImageTagField
    skip_push: OciImageSkipPushField

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData(
            {"publisher": "oci", "registries": self.registries.value or (), **super().get_output_data()}
        )

    @property
    def publish_tags(self) -> Tuple[str, ...]:
        return self.tags.value or ((self.tag.value,) if self.tag.value else ())


@dataclass(frozen=True)
class OciImageWithLayout:
    """The built image of a target, and where its OCI layout sits in `image.digest`."""

    image: BuiltImage
    field_set: OciImageFieldSet

    @property
    def layout(self) -> str:
        return f"{self.image.directory}/{IMAGE_LAYOUT}"

    @property
    def sbom_dir(self) -> str:
        """The image's SBOMs (`sbom/<arch>.spdx.json`), attested on publish when signing."""
        return f"{self.image.directory}/{SBOM_DIR}"


@dataclass(frozen=True)
class OciImageLayoutRequest:
    address: Address


@rule
async def oci_image_with_layout(request: OciImageLayoutRequest) -> OciImageWithLayout:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="pants_oci publish")
    )
    field_set = OciImageFieldSet.create(wrapped.target)
    image = await Get(BuiltImage, OciImageFieldSet, field_set)
    return OciImageWithLayout(image, field_set)


@rule(desc="Push an OCI image")
async def publish_oci_image(
    request: PublishOciImageRequest,
    oci: OciSubsystem,
    core: OciBuildPex,
    build_root: BuildRoot,
    complete_env: CompleteEnvironmentVars,
) -> PublishProcesses:
    field_set = request.field_set
    owner = str(field_set.address)
    built = await Get(OciImageWithLayout, OciImageLayoutRequest(field_set.address))
    plan = plan_pushes(
        oci.registries(),
        field_set.registries.value or (),
        built.field_set.repository_name,
        field_set.publish_tags,
        owner,
    )
    if field_set.skip_push.value:
        names = tuple(ref for push in plan for ref in push.references)
        return PublishProcesses(
            [PublishPackages(names=names, description=f"(by `{field_set.skip_push.alias}` on {owner})")]
        )
    signing = signing_from_options(oci, build_root.path)
    env = push_environment(complete_env, oci.publish_env_vars, signing)
    jobs = []
    for push in plan:
        if push.registry.skip_push:
            jobs.append(
                PublishPackages(
                    names=push.references, description=f"(by `skip_push` on registry @{push.registry.alias})"
                )
            )
            continue
        process = await Get(
            Process,
            VenvPexProcess(
                core.pex,
                argv=push_argv(built.layout, push, signing, built.sbom_dir),
                description=f"Push {owner} to {push.repository}",
                input_digest=built.image.digest,
                extra_env=env,
                cache_scope=ProcessCacheScope.PER_SESSION,
            ),
        )
        jobs.append(PublishPackages(names=push.references, process=InteractiveProcess.from_process(process)))
    return PublishProcesses(jobs)


def rules():
    return (*collect_rules(), *PublishOciImageFieldSet.rules())
