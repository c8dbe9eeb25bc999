# BUILD-file macros (loaded by [GLOBAL].build_file_prelude_globs) shared by examples/.

# Seconds a compile step (the C and Rust examples' shell_commands) may take. Pants' default for
# shell_command (30 s) is shorter than a cold rustc build on a loaded 2-core CI machine. (The Go
# examples are built by Pants' Go backend, whose processes have no timeout.)
BUILD_STEP_TIMEOUT = 1200


def c_static_binary(binary, source, name="bin"):
    """A static C binary (glibc) built by the host's gcc in the sandbox, from one source file."""
    files(name=f"{name}-src", sources=[source])
    shell_command(
        name=name,
        command=f"cc -static -Os -s -o {binary} {source}",
        # gcc's driver runs `as` and, through collect2, `ld` from PATH; cc1 comes from its own libexec.
        tools=["cc", "as", "ld"],
        execution_dependencies=[f":{name}-src"],
        output_files=[binary],
        timeout=BUILD_STEP_TIMEOUT,
    )


def static_binary_images(binary, images, binary_target=":bin"):
    """`binary` in /usr/local/bin as one layer, and an image running it for each `name: base`."""
    oci_layer(name="layer", contents=[binary_target], destination="/usr/local/bin", file_mode="0755")
    for name, base in images.items():
        oci_image(name=name, base=base, layers=[":layer"], entrypoint=[f"/usr/local/bin/{binary}"])
