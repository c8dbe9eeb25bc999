# BUILD-file macros (loaded by [GLOBAL].build_file_prelude_globs) shared by examples/.

# Seconds a compile step (the C and Rust examples' shell_commands) may take. Pants' default for
# shell_command (30 s) is shorter than a cold rustc build on a loaded 2-core CI machine. (The Go
# examples are built by Pants' Go backend, whose processes have no timeout.)
BUILD_STEP_TIMEOUT = 1200


def static_binary_images(binary, images, binary_target=":bin"):
    """`binary` in /usr/local/bin as one layer, and an image running it for each `name: base`."""
    oci_layer(name="layer", contents=[binary_target], destination="/usr/local/bin", file_mode="0755")
    for name, base in images.items():
        oci_image(name=name, base=base, layers=[":layer"], entrypoint=[f"/usr/local/bin/{binary}"])
