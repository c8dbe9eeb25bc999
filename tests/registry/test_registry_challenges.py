"""WWW-Authenticate challenges and scope merging: the pure parts of the auth flow."""

from __future__ import annotations

from ocibuild.registry.auth import merge_scopes, parse_challenges


def test_bearer_challenge_as_distribution_sends_it() -> None:
    (challenge,) = parse_challenges(
        'Bearer realm="http://127.0.0.1:5001/token",service="test-registry",scope="repository:a/b:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.param("realm") == "http://127.0.0.1:5001/token"
    assert challenge.param("service") == "test-registry"
    assert challenge.param("scope") == "repository:a/b:pull,push"


def test_several_challenges_quoted_commas_and_escapes() -> None:
    basic, bearer = parse_challenges(
        'Basic realm="a, \\"quoted\\" realm", Bearer realm=https://x/t,error="insufficient_scope"'
    )
    assert (basic.scheme, basic.param("realm")) == ("basic", 'a, "quoted" realm')
    assert (bearer.scheme, bearer.param("realm"), bearer.param("error")) == (
        "bearer",
        "https://x/t",
        "insufficient_scope",
    )


def test_merge_scopes_unions_actions_per_repository() -> None:
    assert merge_scopes(["repository:a:pull", "repository:a:pull,push", "repository:b:pull"]) == [
        "repository:a:pull,push",
        "repository:b:pull",
    ]
