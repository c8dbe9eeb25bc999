"""OCI images: descriptors, configs, layouts and archives, built over an optional base."""

__all__ = [
    "archives",
    "config",
    "descriptors",
    "image",
    "layers",
    "layout",
    "output_dir",
    "platforms",
    "request",
]
