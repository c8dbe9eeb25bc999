"""SPDX 2.3 SBOMs of the images the core builds (docs/sbom.md).

`layer_scan.image_layers` reads the facts out of the image's layer blobs (and the lock),
`spdx.image_sbom` / `spdx.index_sbom` write the documents; `facts` holds the plain values between them.
"""
