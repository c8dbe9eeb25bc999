"""The pipeline's view of the Pants configuration: pants.toml's [apk], then PANTS_CONFIG_FILES's."""

from __future__ import annotations

from pathlib import Path

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.refresh.settings import read_settings
from testutil.paths import repo_root


def test_the_repository_s_resolves_and_mirrors() -> None:
    settings = read_settings(repo_root(), environ={})
    assert settings.resolves == {"static": "images/static/apko.yaml"}
    assert settings.lockfile("static") == "images/static/apko.lock.json"
    (first, *_) = settings.mirrors["https://dl-cdn.alpinelinux.org/alpine/"]
    assert first == f"file://{repo_root()}/../shared/apk-mirror/alpine/"


def test_config_files_overlay_the_mirrors(tmp_path: Path) -> None:
    (tmp_path / "pants.toml").write_text(
        '[apk]\nresolves = { a = "a/apko.yaml" }\nmirrors = { "https://x/" = ["file:///one/"] }\n'
    )
    (tmp_path / "ci.toml").write_text('[apk]\nmirrors = { "https://x/" = ["file:///two/"] }\n')
    settings = read_settings(tmp_path, environ={"PANTS_CONFIG_FILES": "ci.toml"})
    assert settings.resolves == {"a": "a/apko.yaml"} and settings.mirrors == {"https://x/": ["file:///two/"]}
    assert read_settings(tmp_path, environ={"PANTS_CONFIG_FILES": "+['ci.toml']"}).mirrors["https://x/"] == [
        "file:///two/"
    ]


def test_no_resolve_fails_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pants.toml").write_text("[GLOBAL]\n")
    with pytest.raises(OciBuildError, match=r"pants.toml: \[apk\].resolves names no resolve"):
        read_settings(tmp_path, environ={})
