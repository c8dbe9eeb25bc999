"""Authentication against the real registry: htpasswd Basic auth and distribution's token auth.

Credentials come from every supported place: given, environment variables, Docker's config.json and
a `docker-credential-<name>` helper on PATH. No secret may show up in a log line or an error.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Iterator, List, Tuple

import bcrypt
import pytest
from ocibuild.errors import OciBuildError
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import CredentialSource, StaticCredentials, default_credentials
from ocibuild.registry.push import PushTarget, push_layout, read_layout
from testutil.registry_images import build_layout, layout_blob, noise, skopeo_copy_back
from testutil.servers import Registry, docker_registry_with_auth
from testutil.token_issuer import TokenIssuer, token_issuer

USER, PASSWORD = "ci-bot", "s3cret-Pa55word"


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Tuple[Path, str]:
    return build_layout(tmp_path_factory.mktemp("image"), "images/auth", [{"auth.txt": noise(7, 4_000)}])


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory) -> Iterator[Registry]:
    workdir = tmp_path_factory.mktemp("basic")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (workdir / "htpasswd").write_text(f"{USER}:{hashed}\n")
    auth = {"htpasswd": {"realm": "test-registry", "path": str(workdir / "htpasswd")}}
    with docker_registry_with_auth(workdir, auth) as registry:
        yield registry


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory) -> Iterator[Tuple[Registry, TokenIssuer]]:
    workdir = tmp_path_factory.mktemp("token")
    with token_issuer(workdir, {USER: PASSWORD}) as issuer:
        with docker_registry_with_auth(workdir, issuer.registry_auth()) as registry:
            yield registry, issuer


def push(
    registry: str, layout: Path, repository: str, credentials: CredentialSource | None
) -> Tuple[str, List[str], RegistryClient]:
    lines: List[str] = []
    client = RegistryClient(
        registry, insecure=True, credentials=credentials, log=lines.append, timeout=10, backoff=0.05
    )
    push_layout(read_layout(layout), [PushTarget(client, repository)], ["latest"], log=lines.append)
    return read_layout(layout).digest, lines, client


def assert_no_secret(text: str) -> None:
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert PASSWORD not in text and encoded not in text


def test_basic_auth_with_the_right_credentials(basic_registry: Registry, image, tmp_path: Path) -> None:
    layout, digest = image
    _, lines, _ = push(basic_registry.address, layout, "team/app", StaticCredentials(USER, PASSWORD))
    assert f"pushed {basic_registry.address}/team/app:latest@{digest}" in lines
    assert_no_secret("\n".join(lines))


def test_basic_auth_with_wrong_credentials_names_user_and_origin(basic_registry: Registry, image) -> None:
    layout, _ = image
    with pytest.raises(OciBuildError) as error:
        push(
            basic_registry.address, layout, "team/app", StaticCredentials(USER, "wrong-password", "the test")
        )
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{basic_registry.address}: ")
    assert "team/app" in message and "refused the credentials of 'ci-bot' from the test (HTTP 401" in message
    assert "check the username and password" in message
    assert "wrong-password" not in message


def test_basic_auth_without_credentials_says_how_to_log_in(basic_registry: Registry, image) -> None:
    layout, _ = image
    with pytest.raises(OciBuildError) as error:
        push(basic_registry.address, layout, "team/app", None)
    message = str(error.value)
    assert "in team/app needs credentials (HTTP 401" in message
    assert f"docker login {basic_registry.address}" in message and "OCI_REGISTRY_USERNAME" in message


def test_credentials_from_environment_variables(basic_registry: Registry, image) -> None:
    layout, digest = image
    per_registry = "OCI_REGISTRY_" + basic_registry.address.replace(".", "_").replace(":", "_") + "_"
    env = {
        "HOME": "/nonexistent",
        "OCI_REGISTRY_USERNAME": "someone-else",
        "OCI_REGISTRY_PASSWORD": "not-this-one",
        per_registry + "USERNAME": USER,  # the per-registry pair wins over the global one
        per_registry + "PASSWORD": PASSWORD,
    }
    pushed, _, _ = push(basic_registry.address, layout, "env/app", default_credentials(env))
    assert pushed == digest


def test_credentials_from_docker_config_auths(basic_registry: Registry, image, tmp_path: Path) -> None:
    layout, digest = image
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"auths": {f"http://{basic_registry.address}": {"auth": auth}, "other.example": {"auth": "eDp5"}}}
        )
    )
    pushed, _, _ = push(
        basic_registry.address, layout, "config/app", default_credentials({"DOCKER_CONFIG": str(tmp_path)})
    )
    assert pushed == digest


def test_credentials_from_a_credential_helper_on_path(
    basic_registry: Registry, image, tmp_path: Path
) -> None:
    layout, digest = image
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-testhelper"
    # Docker's helper protocol: the server on stdin, JSON with Username and Secret on stdout.
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        f'read server; echo "$server" >> "{asked}"\n'
        f'if [ "$server" = "{basic_registry.address}" ]; then\n'
        f'  printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {basic_registry.address: "testhelper"}}))
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    pushed, _, _ = push(basic_registry.address, layout, "helper/app", default_credentials(env))
    assert pushed == digest
    assert asked.read_text().splitlines() == [basic_registry.address]  # asked once, cached after

    # credsStore: the same helper for every registry; "not found" means anonymous.
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "testhelper"}))
    assert default_credentials(env).get("elsewhere.example:5000") is None
    found = default_credentials(env).get(basic_registry.address)
    assert found is not None and found.username == USER


def test_bearer_token_auth(token_registry, image, tmp_path: Path) -> None:
    registry, issuer = token_registry
    layout, digest = image
    issuer.requests.clear()
    pushed, lines, client = push(registry.address, layout, "tok/app", StaticCredentials(USER, PASSWORD))
    assert pushed == digest
    # One token per scope set, cached: push (pull,push) for everything in a fresh repository.
    assert {scopes for _, scopes in issuer.requests} == {("repository:tok/app:pull,push",)}
    assert len(issuer.requests) == client._auth.token_requests == 1
    assert all(user == USER for user, _ in issuer.requests)
    assert_no_secret("\n".join(lines))
    assert (
        skopeo_copy_back_with_token(registry, issuer, f"{registry.address}/tok/app:latest", tmp_path)
        == digest
    )

    # Reading back through the client with a pull scope, then a registry-side 401 refreshes it.
    reader = RegistryClient(registry.address, insecure=True, credentials=StaticCredentials(USER, PASSWORD))
    manifest = reader.get_manifest("tok/app", "latest")
    assert manifest is not None and manifest.data == layout_blob(layout, digest) and manifest.digest == digest
    reader._auth._tokens[("repository:tok/app:pull",)].value = "expired.or.revoked"
    assert reader.get_manifest("tok/app", digest) is not None
    assert reader._auth.token_requests == 2


def skopeo_copy_back_with_token(
    registry: Registry, issuer: TokenIssuer, reference: str, tmp_path: Path
) -> str:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp_path / "skopeo-auth.json").write_text(json.dumps({"auths": {registry.address: {"auth": auth}}}))
    return skopeo_copy_back(reference, tmp_path / "back", authfile=tmp_path / "skopeo-auth.json")


def test_bearer_token_refused_credentials(token_registry, image) -> None:
    registry, issuer = token_registry
    layout, _ = image
    with pytest.raises(OciBuildError) as error:
        push(registry.address, layout, "tok/app", StaticCredentials(USER, "nope-nope"))
    message = str(error.value)
    assert message.startswith(
        f"{registry.address}: token service {issuer.address} refused the credentials (HTTP 401)"
    )
    assert "repository:tok/app:pull,push" in message and "nope-nope" not in message


def test_bearer_token_without_credentials(token_registry, image) -> None:
    registry, issuer = token_registry
    layout, _ = image
    with pytest.raises(OciBuildError, match="refused anonymous access"):
        push(registry.address, layout, "tok/app", None)


def test_secrets_stay_out_of_reprs() -> None:
    credentials = StaticCredentials(USER, PASSWORD).get("x")
    assert_no_secret(repr(credentials))
