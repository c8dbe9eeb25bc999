"""Helpers shared by the core's packages: digests, compression, atomic writes, architecture names,
and the one validator of JSON/YAML input."""

__all__ = ["architectures", "atomic", "compression", "digests", "validate"]
