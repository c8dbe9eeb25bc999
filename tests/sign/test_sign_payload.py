"""The simple-signing payload is byte for byte cosign's, and its signatures verify with openssl."""

from __future__ import annotations

import pytest
from ocibuild.errors import OciBuildError
from ocibuild.sign.gojson import marshal
from ocibuild.sign.simplesigning import parse_simple_signing_payload, simple_signing_payload

# sigstore/sigstore pkg/signature/payload/payload_test.go (TestMarshalCosign): what Go's json.Marshal writes.
DIGEST = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"
NO_CLAIMS = (
    '{"critical":{"identity":{"docker-reference":"example.com/test/image"},"image":{"docker-manifest-digest":'
    '"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image '
    'signature"},"optional":null}'
)
CUSTOM_IDENTITY = (
    '{"critical":{"identity":{"docker-reference":"docker.io/library/test:1.2.3"},"image":{"docker-manifest-digest":'
    '"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image '
    'signature"},"optional":null}'
)
ATOMIC = (
    '{"critical":{"identity":{"docker-reference":"example.com/atomic/test/image"},"image":{"docker-manifest-digest":'
    '"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image '
    'signature"},"optional":{"creator":"atomic","timestamp":1458239713}}'
)


def test_payload_matches_sigstore_test_vectors() -> None:
    assert simple_signing_payload("example.com/test/image", DIGEST) == NO_CLAIMS.encode()
    assert simple_signing_payload("docker.io/library/test:1.2.3", DIGEST) == CUSTOM_IDENTITY.encode()
    # `optional` is a Go map: keys sorted whatever order they were given in.
    annotations = {"timestamp": 1458239713, "creator": "atomic"}
    assert simple_signing_payload("example.com/atomic/test/image", DIGEST, annotations) == ATOMIC.encode()


def test_payload_for_a_loopback_registry() -> None:
    payload = simple_signing_payload("127.0.0.1:5000/images/static", DIGEST)
    assert payload.startswith(b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/images/static"},')


def test_go_string_escaping() -> None:
    # encoding/json's HTML-safe escaping, U+2028/9, short escapes (Go 1.22+ has \b and \f) and lowercase hex.
    assert marshal("<a>&b") == b'"\\u003ca\\u003e\\u0026b"'
    assert marshal("\u2028\u2029") == b'"\\u2028\\u2029"'
    assert marshal('"\\\b\f\n\r\t\x01\x1f\x7f') == b'"\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f"'
    assert marshal("caf\u00e9 \u2603") == '"caf\u00e9 \u2603"'.encode("utf-8")
    assert marshal({"b": [1, True, None], "a": {}}) == b'{"b":[1,true,null],"a":{}}'


def test_payload_round_trips_and_rejects_other_types() -> None:
    claim = parse_simple_signing_payload(NO_CLAIMS.encode(), "payload")
    assert (claim.docker_reference, claim.manifest_digest, claim.optional) == (
        "example.com/test/image",
        DIGEST,
        None,
    )
    atomic = NO_CLAIMS.replace("cosign container image signature", "atomic container signature")
    with pytest.raises(OciBuildError, match="type 'atomic container signature'"):
        parse_simple_signing_payload(atomic.encode(), "payload")
    with pytest.raises(OciBuildError, match="not a simple-signing JSON"):
        parse_simple_signing_payload(b"[]", "payload")
    with pytest.raises(OciBuildError, match="not an image digest"):
        simple_signing_payload("example.com/test/image", "sha256:ABC")


def test_signature_over_the_payload_verifies_with_openssl(signing_key, openssl_verify) -> None:
    payload = simple_signing_payload("127.0.0.1:5000/images/static", DIGEST)
    signature = signing_key.sign(payload)
    assert openssl_verify(signing_key.public_key.pem(), signature, payload)
    assert not openssl_verify(signing_key.public_key.pem(), signature, payload.replace(b"d34d", b"d34e", 1))
