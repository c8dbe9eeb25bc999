"""`pants oci-verify`: check the signatures `pants publish` attached to the images in each registry.

It checks what `cosign verify --key cosign.pub --insecure-ignore-tlog` does: the registry holds a
signature for the digest this checkout builds, made by the given key, over a payload naming that
digest; and (`--oci-verify-attestations`, on by default) each platform manifest's SBOM attestation
is signed by that key and attests the SBOM this checkout builds (`cosign verify-attestation --type
spdxjson`). The image is built (from cache) to know its digest, then the core's `oci-verify`
command reads the signatures from every registry the target publishes to.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.base.build_root import BuildRoot
from pants.engine.console import Console
from pants.engine.env_vars import CompleteEnvironmentVars
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.process import InteractiveProcess, InteractiveProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Effect, Get, MultiGet, collect_rules, goal_rule
from pants.engine.target import Targets
from pants.option.option_types import BoolOption, StrOption
from pants.util.strutil import softwrap
from pants_oci.goals.publish import (
    ImagePush,
    OciImageLayoutRequest,
    OciImageWithLayout,
    PublishOciImageFieldSet,
    plan_pushes,
    publish_environment,
)
from pants_oci.subsystems.oci import OciSubsystem
from pants_oci.util_rules.ocibuild_process import OciBuildPex


class OciVerifySubsystem(GoalSubsystem):
    name = "oci-verify"
    help = softwrap(
        """
        Check that every registry an `oci_image` publishes to holds a valid signature, by the
        given public key, for the digest this checkout builds (what `cosign verify --key`
        checks). Example: `pants oci-verify --key=cosign.pub images/static:static`.
        """
    )

    key = StrOption(
        default=None,
        help="Public key (PEM, e.g. `cosign.pub`) the signatures must verify with; relative to the build root.",
    )
    attestations = BoolOption(
        default=True,
        help=softwrap(
            """
            Also check each platform manifest's SBOM attestation (what `pants publish` attaches when
            signing): signed by the key, about that digest, with predicate type
            https://spdx.dev/Document, and attesting the SBOM this checkout builds.
            """
        ),
    )


class OciVerify(Goal):
    subsystem_cls = OciVerifySubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


def verify_argv(
    layout: str, push: ImagePush, key_path: str, signature_format: str, sbom_dir: Optional[str] = None
) -> Tuple[str, ...]:
    """The core's oci-verify command; given `sbom_dir`, the SBOM attestations are checked against it."""
    argv = [
        "oci-verify",
        f"--layout={layout}",
        f"--repository={push.repository}",
        f"--key={key_path}",
        f"--signature-format={signature_format}",
        "--recursive",  # an index's platform manifests are signed too
    ]
    if sbom_dir:
        argv += ["--attestations", f"--sbom-dir={sbom_dir}"]
    if push.registry.insecure:
        argv.append(f"--insecure-registry={push.registry.host}")
    return tuple(argv)


@goal_rule
async def oci_verify(
    targets: Targets,
    subsystem: OciVerifySubsystem,
    oci: OciSubsystem,
    core: OciBuildPex,
    build_root: BuildRoot,
    console: Console,
    complete_env: CompleteEnvironmentVars,
) -> OciVerify:
    field_sets = [
        PublishOciImageFieldSet.create(t) for t in targets if PublishOciImageFieldSet.is_applicable(t)
    ]
    key: Optional[str] = subsystem.key
    if not key:
        console.print_stderr("error: `pants oci-verify` needs the public key: pass --oci-verify-key=PATH.")
        return OciVerify(exit_code=2)
    if not field_sets:
        console.print_stderr("error: `pants oci-verify` found no `oci_image` targets in the given specs.")
        return OciVerify(exit_code=2)
    signature_format = oci.checked_signature_format()
    built = await MultiGet(Get(OciImageWithLayout, OciImageLayoutRequest(fs.address)) for fs in field_sets)
    env = publish_environment(complete_env, oci.publish_env_vars)
    exit_code = 0
    checked = 0
    for field_set, image in zip(field_sets, built):
        if field_set.skip_push.value:
            continue
        plan = plan_pushes(
            oci.registries(),
            field_set.registries.value or (),
            image.field_set.repository_name,
            field_set.publish_tags,
            str(field_set.address),
        )
        for push in plan:
            if push.registry.skip_push:
                continue
            process = await Get(
                Process,
                VenvPexProcess(
                    core.pex,
                    argv=verify_argv(
                        image.layout,
                        push,
                        os.path.join(build_root.path, key),
                        signature_format,
                        image.sbom_dir if subsystem.attestations else None,
                    ),
                    description=f"Verify {field_set.address} in {push.repository}",
                    input_digest=image.image.digest,
                    extra_env=env,
                    cache_scope=ProcessCacheScope.PER_SESSION,
                ),
            )
            result = await Effect(
                InteractiveProcessResult, InteractiveProcess, InteractiveProcess.from_process(process)
            )
            checked += 1
            exit_code = exit_code or result.exit_code
    if not checked:
        console.print_stderr(
            "error: `pants oci-verify`: the targets publish to no registry (see `registries`)."
        )
        return OciVerify(exit_code=2)
    return OciVerify(exit_code=exit_code)


def rules():
    return collect_rules()
