"""Pushing OCI image layouts to registries: references, credentials, auth, the HTTP client and the push flow."""
