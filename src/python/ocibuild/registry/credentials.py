"""Where registry credentials come from: the environment (CI), Docker's config.json, credential helpers.

Lookup order for a registry (the first source that knows it wins):
1. `OCI_REGISTRY_<HOST>_USERNAME` / `OCI_REGISTRY_<HOST>_PASSWORD`, where <HOST> is the registry's
   host[:port] upper-cased with every other character than A-Z and 0-9 turned into `_`
   (e.g. `OCI_REGISTRY_GHCR_IO_PASSWORD`, `OCI_REGISTRY_LOCALHOST_5000_USERNAME`);
2. `OCI_REGISTRY_USERNAME` / `OCI_REGISTRY_PASSWORD` (any registry: the common single-registry CI case);
3. `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, as Docker reads it: `credHelpers[host]`, else
   `credsStore`, both run as `docker-credential-<name> get` with the server on stdin; else the
   base64 `auth` (or `username`/`password`) of the `auths` entry for the host.
No credentials means anonymous access. Secrets never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from ocibuild.errors import OciBuildError

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    origin: str = ""  # where they came from, for messages ("OCI_REGISTRY_PASSWORD", "config.json", ...)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, origin={self.origin!r})"


class CredentialSource:
    """Credentials for a registry host[:port], or None for anonymous access."""

    def get(self, registry: str) -> Optional[Credentials]:
        raise NotImplementedError


class StaticCredentials(CredentialSource):
    def __init__(self, username: str, password: str, origin: str = "given credentials") -> None:
        self._credentials = Credentials(username, password, origin)

    def get(self, registry: str) -> Optional[Credentials]:
        return self._credentials


class Anonymous(CredentialSource):
    def get(self, registry: str) -> Optional[Credentials]:
        return None


def env_prefix(registry: str) -> str:
    """`OCI_REGISTRY_<HOST>_`: the per-registry variable prefix."""
    return "OCI_REGISTRY_" + re.sub(r"[^A-Z0-9]", "_", registry.upper()) + "_"


class EnvironmentCredentials(CredentialSource):
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, registry: str) -> Optional[Credentials]:
        for prefix in (env_prefix(registry), "OCI_REGISTRY_"):
            username, password = self._environ.get(prefix + "USERNAME"), self._environ.get(
                prefix + "PASSWORD"
            )
            if username is not None or password is not None:
                if not username or password is None:
                    missing = prefix + ("USERNAME" if not username else "PASSWORD")
                    raise OciBuildError(
                        f"{registry}: {missing} is not set but its partner is: set both or neither"
                    )
                return Credentials(username, password, f"{prefix}USERNAME/{prefix}PASSWORD")
        return None


def _hostname(key: str) -> str:
    """Docker's ConvertToHostname: `https://host:port/v1/` -> `host:port`."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def _canonical_host(registry: str) -> str:
    return DOCKER_HUB if registry in _DOCKER_HUB_ALIASES else registry


class DockerConfigCredentials(CredentialSource):
    """Docker's `config.json` (read once), with its credential helpers."""

    def __init__(self, path: Path, environ: Optional[Mapping[str, str]] = None) -> None:
        self.path = path
        self._environ = dict(environ) if environ is not None else None
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._config: dict = {}
            return
        except (OSError, ValueError) as e:
            raise OciBuildError(f"{path}: cannot read Docker's config ({e})") from None
        try:
            config = json.loads(text)
        except ValueError as e:
            raise OciBuildError(
                f"{path}: not valid JSON ({e.__class__.__name__} at line {getattr(e, 'lineno', '?')})"
            ) from None
        if not isinstance(config, dict):
            raise OciBuildError(f"{path}: Docker's config must be a JSON object")
        self._config = config

    def _auth_entry(self, host: str) -> Optional[dict]:
        auths = self._config.get("auths") or {}
        for key in sorted(auths):  # sorted: one deterministic winner if two keys name the same host
            if _canonical_host(_hostname(key)) == host and isinstance(auths[key], dict):
                return auths[key]
        return None

    def _helper_for(self, host: str) -> Optional[str]:
        helpers = self._config.get("credHelpers") or {}
        for key in sorted(helpers):
            if _canonical_host(_hostname(key)) == host:
                return str(helpers[key])
        store = self._config.get("credsStore")
        return str(store) if store else None

    def get(self, registry: str) -> Optional[Credentials]:
        host = _canonical_host(registry)
        helper = self._helper_for(host)
        if helper:
            found = run_credential_helper(
                helper, _DOCKER_HUB_KEY if host == DOCKER_HUB else host, self._environ
            )
            if found is not None:
                return found
        entry = self._auth_entry(host)
        if entry is None:
            return None
        where = f"{self.path} auths[{host!r}]"
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise OciBuildError(
                    f"{where}: `auth` is not base64 of 'user:password'; run docker login again"
                ) from None
            username, sep, password = decoded.partition(":")
            if not sep or not username:
                raise OciBuildError(
                    f"{where}: `auth` is not base64 of 'user:password'; run docker login again"
                )
            return Credentials(username, password, str(self.path))
        if entry.get("username") and entry.get("password") is not None:
            return Credentials(str(entry["username"]), str(entry["password"]), str(self.path))
        if entry.get("identitytoken"):
            raise OciBuildError(
                f"{where}: holds an OAuth identity token, which this client does not exchange; "
                "log in with a username and password or token instead"
            )
        return None  # an empty entry: docker writes these when a helper/store holds the secret


def run_credential_helper(
    name: str, server: str, environ: Optional[Mapping[str, str]] = None
) -> Optional[Credentials]:
    """`docker-credential-<name> get`, the server on stdin; None when it has nothing for the server."""
    program = f"docker-credential-{name}"
    try:
        result = subprocess.run(
            [program, "get"],
            input=server.encode("utf-8"),
            capture_output=True,
            timeout=60,
            env=dict(environ) if environ is not None else None,
        )
    except FileNotFoundError:
        raise OciBuildError(
            f"{program} is not on PATH, but Docker's config names it for {server}: install it or edit the config"
        ) from None
    except subprocess.TimeoutExpired:
        raise OciBuildError(
            f"{program} get did not answer in 60s for {server}: is it waiting for a keychain?"
        ) from None
    if result.returncode != 0:
        # Docker's helpers say "credentials not found in native keychain" when they have nothing.
        if b"credentials not found" in result.stdout.lower() + result.stderr.lower():
            return None
        # Its output is not shown: a helper may echo what it read.
        raise OciBuildError(
            f"{program} get failed for {server} (exit {result.returncode}): run it by hand to see why"
        )
    try:
        answer = json.loads(result.stdout.decode("utf-8"))
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise OciBuildError(f"{program} get answered no JSON with Username and Secret for {server}") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise OciBuildError(f"{program} get answered no JSON with Username and Secret for {server}")
    if not secret:
        return None
    return Credentials(username, secret, program)


class ChainedCredentials(CredentialSource):
    def __init__(self, sources: Sequence[CredentialSource]) -> None:
        self._sources = tuple(sources)

    def get(self, registry: str) -> Optional[Credentials]:
        for source in self._sources:
            found = source.get(registry)
            if found is not None:
                return found
        return None


def docker_config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".docker" / "config.json"


def default_credentials(environ: Optional[Mapping[str, str]] = None) -> CredentialSource:
    """The environment first (CI), then Docker's config and helpers."""
    env = dict(os.environ if environ is None else environ)
    return ChainedCredentials(
        [
            EnvironmentCredentials(env),
            DockerConfigCredentials(docker_config_path(env), env if environ is not None else None),
        ]
    )
