"""Where credentials come from, without a registry: environment, config.json, credential helpers."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.registry.credentials import (
    Credentials,
    CredentialSource,
    DockerConfigCredentials,
    EnvironmentCredentials,
    default_credentials,
    env_prefix,
)


def _found(source: CredentialSource, registry: str) -> Credentials:
    credentials = source.get(registry)
    assert credentials is not None, registry
    return credentials


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_env_prefix_names_the_registry() -> None:
    assert env_prefix("ghcr.io") == "OCI_REGISTRY_GHCR_IO_"
    assert env_prefix("localhost:5000") == "OCI_REGISTRY_LOCALHOST_5000_"


def test_environment_per_registry_then_global() -> None:
    env = {
        "OCI_REGISTRY_USERNAME": "all",
        "OCI_REGISTRY_PASSWORD": "pw-all",
        "OCI_REGISTRY_GHCR_IO_USERNAME": "gh",
        "OCI_REGISTRY_GHCR_IO_PASSWORD": "pw-gh",
    }
    source = EnvironmentCredentials(env)
    assert _found(source, "ghcr.io").username == "gh"
    assert _found(source, "other.example").username == "all"
    assert EnvironmentCredentials({}).get("ghcr.io") is None


def test_half_a_pair_is_an_error_without_the_secret() -> None:
    with pytest.raises(OciBuildError) as error:
        EnvironmentCredentials({"OCI_REGISTRY_PASSWORD": "hunter2"}).get("ghcr.io")
    assert "OCI_REGISTRY_USERNAME is not set" in str(error.value) and "hunter2" not in str(error.value)


def test_config_auths_match_by_host_whatever_the_key_spelling(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": _auth("hubuser", "hubpw")},
                    "http://localhost:5000": {"auth": _auth("local", "pw:with:colons")},
                    "ghcr.io": {"username": "gh", "password": "ghpw"},
                    "empty.example": {},
                }
            }
        )
    )
    source = DockerConfigCredentials(config)
    assert _found(source, "docker.io").username == "hubuser"
    local = _found(source, "localhost:5000")
    assert (local.username, local.password) == ("local", "pw:with:colons")
    assert _found(source, "ghcr.io").password == "ghpw"
    assert source.get("empty.example") is None
    assert source.get("unknown.example") is None
    assert "pw:with:colons" not in repr(local)


def test_broken_auth_entry_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"r.example": {"auth": "!!notbase64"}}}))
    with pytest.raises(OciBuildError, match=r"auths\['r.example'\]: `auth` is not base64"):
        DockerConfigCredentials(config).get("r.example")


def test_missing_config_is_anonymous(tmp_path: Path) -> None:
    assert default_credentials({"HOME": str(tmp_path)}).get("ghcr.io") is None


def test_helper_failing_is_a_line_without_its_output(tmp_path: Path) -> None:
    helper = tmp_path / "docker-credential-broken"
    helper.write_text("#!/bin/sh\necho 'leaked-secret'; echo 'leaked-secret' >&2; exit 3\n")
    helper.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "broken"}))
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    with pytest.raises(OciBuildError) as error:
        default_credentials(env).get("r.example")
    assert (
        str(error.value)
        == "docker-credential-broken get failed for r.example (exit 3): run it by hand to see why"
    )


def test_helper_not_on_path(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"r.example": "absent"}}))
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path)}
    with pytest.raises(OciBuildError, match="docker-credential-absent is not on PATH"):
        default_credentials(env).get("r.example")
    assert default_credentials(env).get("other.example") is None  # the helper is only for r.example
