from __future__ import annotations

import pytest
from ocibuild.apk.spec import ImageContentsSpec, load_spec
from ocibuild.errors import OciBuildError

GOOD = """\
contents:
  repositories:
    - https://dl-cdn.alpinelinux.org/alpine/v3.19/main/
  keyring:
    - https://alpinelinux.org/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub
    - keys/local.rsa.pub
  packages: [alpine-baselayout-data, ca-certificates-bundle, "tzdata>=2023c"]
archs: [x86_64, arm64]
"""


def test_valid_spec() -> None:
    spec = load_spec(GOOD, "images/static/apko.yaml")
    assert spec == ImageContentsSpec(
        repositories=("https://dl-cdn.alpinelinux.org/alpine/v3.19/main",),
        keyring=(
            "https://alpinelinux.org/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
            "keys/local.rsa.pub",
        ),
        packages=("alpine-baselayout-data", "ca-certificates-bundle", "tzdata>=2023c"),
        archs=("x86_64", "aarch64"),
    )


def test_malformed_yaml_names_file_and_line() -> None:
    text = "contents:\n  packages: [a, b\narchs: [x86_64]\n"
    with pytest.raises(OciBuildError) as e:
        load_spec(text, "img/apko.yaml")
    msg = str(e.value)
    assert msg.startswith("img/apko.yaml: malformed YAML at line 3")
    assert "\n" not in msg


@pytest.mark.parametrize(
    "text, key",
    [
        (GOOD + "entrypoint: {command: /bin/sh}\n", "img.yaml: has unknown key(s) entrypoint"),
        (GOOD.replace("  packages:", "  pakages:"), "img.yaml: `contents` has unknown key(s) pakages"),
    ],
)
def test_unknown_keys_are_errors(text: str, key: str) -> None:
    with pytest.raises(OciBuildError) as e:
        load_spec(text, "img.yaml")
    assert str(e.value).startswith(key)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("- a\n- b\n", "must be an object"),
        ("archs: [x86_64]\n", "`contents` is required"),
        (GOOD.replace("archs: [x86_64, arm64]", "archs: [mips]"), "unknown architecture 'mips'"),
        (
            GOOD.replace("archs: [x86_64, arm64]", "archs: [x86_64, amd64]"),
            "`archs` lists x86_64 more than once",
        ),
        (GOOD.replace("archs: [x86_64, arm64]", ""), "`archs` is required"),
        (GOOD.replace('"tzdata>=2023c"', "tzdata, tzdata"), "lists tzdata more than once"),
        (GOOD.replace('"tzdata>=2023c"', "3"), "`contents.packages[2]` must be a string, got 3"),
        (
            GOOD.replace("https://dl-cdn.alpinelinux.org/alpine/v3.19/main/", '"@local /tmp/repo"'),
            "must be a URL",
        ),
        (
            GOOD.replace('[alpine-baselayout-data, ca-certificates-bundle, "tzdata>=2023c"]', "[]"),
            "must not be empty",
        ),
    ],
)
def test_invalid_specs(text: str, fragment: str) -> None:
    with pytest.raises(OciBuildError, match="^x.yaml: ") as e:
        load_spec(text, "x.yaml")
    assert fragment in str(e.value)


def test_packages_twice_is_an_error_naming_key_and_line() -> None:
    text = GOOD.replace("archs:", "  packages: [busybox]\narchs:")  # a second `packages:` under contents
    assert text.count("packages:") == 2
    with pytest.raises(OciBuildError) as e:
        load_spec(text, "images/static/apko.yaml")
    assert str(e.value) == (
        "images/static/apko.yaml: line 8: duplicate key 'packages': each key may appear once; remove one"
    )


def test_top_level_key_twice_is_an_error() -> None:
    with pytest.raises(OciBuildError, match=r"^x.yaml: line 9: duplicate key 'archs'"):
        load_spec(GOOD + "archs: [x86_64]\n", "x.yaml")


def test_merge_key_override_is_allowed() -> None:
    text = GOOD.replace(
        '  packages: [alpine-baselayout-data, ca-certificates-bundle, "tzdata>=2023c"]\n',
        "  <<: {packages: [busybox]}\n  packages: [musl]\n",
    )
    assert load_spec(text, "x.yaml").packages == ("musl",)  # a key may override one merged in by `<<`


def test_apk_lock_refuses_packages_twice_and_writes_nothing(tmp_path, capsys) -> None:
    from ocibuild.__main__ import main

    spec = tmp_path / "apko.yaml"
    spec.write_text(GOOD.replace("archs:", "  packages: [busybox]\narchs:"))
    assert main(["apk-lock", "--spec", str(spec), "--output", str(tmp_path / "apko.lock.json")]) == 1
    assert capsys.readouterr().err == (
        f"error: {spec}: line 8: duplicate key 'packages': each key may appear once; remove one\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apko.yaml"]
