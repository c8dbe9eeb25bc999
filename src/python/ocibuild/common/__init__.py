"""Helpers shared by the core's packages: digests, compression, atomic writes, architecture names."""
