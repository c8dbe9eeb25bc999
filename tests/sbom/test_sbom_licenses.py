"""apk `L:` values as SPDX expressions: real Alpine 3.19 values, apk-style lists, unknown names."""

from __future__ import annotations

import pytest
from ocibuild.sbom.licenses import NOASSERTION, License, spdx_license
from testutil.sbom_images import alpine_index_licenses


@pytest.mark.parametrize(
    "apk, expression",
    [
        ("MIT", "MIT"),
        ("GPL-2.0-only OR MIT", "GPL-2.0-only OR MIT"),
        ("MPL-2.0 AND MIT", "MPL-2.0 AND MIT"),
        ("ISC AND ( BSD-3-Clause OR MIT )", "ISC AND (BSD-3-Clause OR MIT)"),
        ("(GPL-2.0-only OR MIT) AND ISC", "(GPL-2.0-only OR MIT) AND ISC"),
        ("GPL-2.0-only OR MIT AND ISC", "GPL-2.0-only OR MIT AND ISC"),
        ("mit and bsd-2-clause", "MIT AND BSD-2-Clause"),  # lowercase operators and ids
        ("MIT BSD-3-Clause", "MIT AND BSD-3-Clause"),  # an apk-style list: each applies
        ("GPL-2.0+", "GPL-2.0+"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH Classpath-exception-2.0"),
    ],
)
def test_spdx_expressions_are_kept_in_canonical_form(apk: str, expression: str) -> None:
    assert spdx_license(apk) == License(expression)


def test_unknown_names_become_declared_license_refs() -> None:
    assert spdx_license("Public-Domain") == License(
        "LicenseRef-Public-Domain", (("LicenseRef-Public-Domain", "Public-Domain"),), inexact=True
    )
    got = spdx_license("MIT AND custom:foo bar")
    assert got.expression == "MIT AND LicenseRef-custom-foo AND LicenseRef-bar"
    assert got.extracted == (("LicenseRef-bar", "bar"), ("LicenseRef-custom-foo", "custom:foo"))


def test_an_unlisted_exception_makes_the_pair_one_license_ref() -> None:
    # SPDX 2.3 can only name listed exceptions after WITH
    got = spdx_license("GPL-3.0-or-later WITH OpenSSL-Exception")
    assert got.expression == "LicenseRef-GPL-3.0-or-later-WITH-OpenSSL-Exception"
    assert got.extracted == (
        ("LicenseRef-GPL-3.0-or-later-WITH-OpenSSL-Exception", "GPL-3.0-or-later WITH OpenSSL-Exception"),
    )


@pytest.mark.parametrize("apk", ["(MIT", "MIT AND", "MIT )", "AND", "MIT WITH", "()"])
def test_what_is_no_expression_is_noassertion(apk: str) -> None:
    assert spdx_license(apk) == License(NOASSERTION, inexact=True)


def test_empty_is_noassertion() -> None:
    assert spdx_license("  ") == License(NOASSERTION)


def test_every_alpine_index_license_converts() -> None:
    values = alpine_index_licenses()
    assert len(values) > 20
    for value in values:
        got = spdx_license(value)
        assert got.expression != NOASSERTION, value
        # only names off the SPDX list become LicenseRefs
        assert got.inexact == ("Public-Domain" in value or "OpenSSL-Exception" in value), value
