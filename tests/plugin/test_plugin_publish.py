"""`[oci.registries]`, the `registries`/`tags` fields and the push plan `pants publish` runs."""

from __future__ import annotations

import pytest
from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException
from pants_oci.goals.publish import Signing, plan_pushes, publish_environment, push_argv, push_environment
from pants_oci.goals.verify import verify_argv
from pants_oci.subsystems.registries import ALL_DEFAULT_REGISTRIES, OciRegistries, OciRegistryError
from pants_oci.target_types import OciImageRegistriesField, OciImageTagsField

REGISTRIES = {
    "local": {"address": "127.0.0.1:5000", "default": True, "insecure": True},
    "ghcr": {"address": "ghcr.io/acme", "extra_image_tags": ["stable"], "repository": "base/static"},
    "mirror": {"address": "mirror.example.com", "default": "true", "skip_push": True},
}
OWNER = "images/static:static"


def test_defaults_are_the_registries_marked_default_in_alias_order() -> None:
    registries = OciRegistries.from_dict(REGISTRIES)
    assert [r.alias for r in registries.defaults] == ["local", "mirror"]
    plan = plan_pushes(registries, [ALL_DEFAULT_REGISTRIES], "images/static", ["latest"], OWNER)
    assert [p.repository for p in plan] == [
        "127.0.0.1:5000/images/static",
        "mirror.example.com/images/static",
    ]
    assert plan[1].registry.skip_push


def test_alias_address_extra_tags_and_repository_override() -> None:
    registries = OciRegistries.from_dict(REGISTRIES)
    plan = plan_pushes(registries, ["@ghcr", "quay.io", "@ghcr"], "images/static", ["v1", "latest"], OWNER)
    assert [(p.repository, p.tags) for p in plan] == [
        ("ghcr.io/acme/base/static", ("v1", "latest", "stable")),
        ("quay.io/images/static", ("v1", "latest")),
    ]
    assert plan[0].references == (
        "ghcr.io/acme/base/static:v1",
        "ghcr.io/acme/base/static:latest",
        "ghcr.io/acme/base/static:stable",
    )
    assert plan[0].registry.host == "ghcr.io"


def test_a_registry_named_twice_by_alias_and_address_is_pushed_once() -> None:
    registries = OciRegistries.from_dict(REGISTRIES)
    plan = plan_pushes(registries, ["@local", "127.0.0.1:5000"], "r", ["t"], OWNER)
    assert len(plan) == 1 and plan[0].registry.insecure


def test_unknown_alias_names_the_target_and_the_configured_aliases() -> None:
    with pytest.raises(
        OciRegistryError, match=r"images/static:static: no registry with alias 'nope'.*@ghcr, @local, @mirror"
    ):
        list(OciRegistries.from_dict(REGISTRIES).get("@nope", owner=OWNER))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"bad": {"address": "has space"}}, r"\[oci.registries.bad\]: `address` must be"),
        ({"bad": {}}, r"\[oci.registries.bad\]: `address` must be"),
        ({"bad": {"address": "r.io", "tags": []}}, r"unknown key\(s\) tags"),
        ({"bad": {"address": "r.io", "extra_image_tags": "x"}}, r"`extra_image_tags` must be a list"),
        ({"bad": "r.io"}, r"must be a table"),
    ],
)
def test_bad_registry_options_fail_with_the_table_named(options, message) -> None:
    with pytest.raises(OciRegistryError, match=message):
        OciRegistries.from_dict(options)


def test_a_bad_address_in_a_build_file_names_the_target() -> None:
    with pytest.raises(OciRegistryError, match=r"images/static:static: registry 'not a host'"):
        list(OciRegistries.from_dict({}).get("not a host", owner=OWNER))


def test_push_argv_carries_tags_insecure_host_and_signing() -> None:
    registries = OciRegistries.from_dict(REGISTRIES)
    (push,) = plan_pushes(registries, ["@local"], "images/static", ["latest", "20261201"], OWNER)
    assert push_argv("image/layout", push, None) == (
        "push",
        "--layout=image/layout",
        "--repository=127.0.0.1:5000/images/static",
        "--tag=latest",
        "--tag=20261201",
        "--insecure-registry=127.0.0.1:5000",
    )
    signing = Signing("/keys/cosign.key", "COSIGN_PASSWORD", "bundle")
    assert push_argv("image/layout", push, signing)[-3:] == (
        "--sign-key=/keys/cosign.key",
        "--sign-key-password-env=COSIGN_PASSWORD",
        "--signature-format=bundle",
    )
    assert verify_argv("image/layout", push, "/keys/cosign.pub", "simple") == (
        "oci-verify",
        "--layout=image/layout",
        "--repository=127.0.0.1:5000/images/static",
        "--key=/keys/cosign.pub",
        "--signature-format=simple",
        "--recursive",
        "--insecure-registry=127.0.0.1:5000",
    )


def test_signed_publish_attests_the_sboms_and_verify_checks_them() -> None:
    registries = OciRegistries.from_dict(REGISTRIES)
    (push,) = plan_pushes(registries, ["@local"], "images/static", ["latest"], OWNER)
    signing = Signing("/keys/cosign.key", "COSIGN_PASSWORD", "simple")
    assert push_argv("out/layout", push, signing, "out/sbom")[-1] == "--attach-sbom=out/sbom"
    # nothing to sign the attestation with: no attestation
    assert "--attach-sbom=out/sbom" not in push_argv("out/layout", push, None, "out/sbom")
    assert verify_argv("out/layout", push, "/keys/cosign.pub", "simple", "out/sbom")[-3:] == (
        "--attestations",
        "--sbom-dir=out/sbom",
        "--insecure-registry=127.0.0.1:5000",
    )


def test_tags_field_is_validated_when_the_build_file_is_read() -> None:
    address = Address("images/static", target_name="static")
    assert OciImageTagsField(["latest", "v1.2_3"], address).value == ("latest", "v1.2_3")
    with pytest.raises(InvalidFieldException, match="'tags' field in target images/static:static is '-bad'"):
        OciImageTagsField(["-bad"], address)
    assert OciImageRegistriesField(None, address).value == (ALL_DEFAULT_REGISTRIES,)


def test_publish_environment_passes_requested_names_and_every_registry_credential() -> None:
    complete = {
        "HOME": "/home/ci",
        "SECRET_UNRELATED": "x",
        "OCI_REGISTRY_GHCR_IO_PASSWORD": "p",
        "OCI_REGISTRY_USERNAME": "u",
    }
    assert publish_environment(complete, ["HOME", "PATH", "COSIGN_PASSWORD=set"]) == {
        "HOME": "/home/ci",
        "COSIGN_PASSWORD": "set",
        "OCI_REGISTRY_GHCR_IO_PASSWORD": "p",
        "OCI_REGISTRY_USERNAME": "u",
    }


def test_the_signing_password_variable_reaches_the_push_whatever_its_name() -> None:
    complete = {"MY_PW": "secret", "OTHER": "x", "PATH": "/bin"}
    signing = Signing("/keys/cosign.key", "MY_PW", "simple")
    assert push_environment(complete, ["PATH"], signing) == {"PATH": "/bin", "MY_PW": "secret"}
    assert push_environment(complete, ["PATH"], None) == {"PATH": "/bin"}
