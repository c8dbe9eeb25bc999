"""Cosign-compatible image signatures: keys, payloads, the signature manifests cosign pushes, and a verifier."""
