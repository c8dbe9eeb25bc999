# BUILD-file macros (loaded by [GLOBAL].build_file_prelude_globs) shared by examples/.

# Seconds a compile step may take. Pants' default for shell_command (30 s) is shorter than a cold
# Go build on a 2-core CI machine that is building the other examples and running tests beside it.
BUILD_STEP_TIMEOUT = 1200


def go_static_binary(binary, sources, name="bin"):
    """A static Go binary (CGO_ENABLED=0) built by the host's `go` in the sandbox, reproducibly.

    Go's caches and config live in the sandbox (GOCACHE must be absolute, hence $PWD); -trimpath
    and an empty build id keep paths and randomness out of the binary.
    """
    files(name=f"{name}-src", sources=sources)
    shell_command(
        name=name,
        command=(
            'export HOME="$PWD/.home" GOCACHE="$PWD/.home/go-build" GOPATH="$PWD/.home/go" && '
            f'go build -buildvcs=false -ldflags="-s -w -buildid=" -o {binary} .'
        ),
        tools=["go"],
        extra_env_vars=[
            "CGO_ENABLED=0",
            "GOFLAGS=-trimpath",
            "GOENV=off",
            "GOPROXY=off",
            "GOTOOLCHAIN=local",
            "GO111MODULE=on",
            "GOOS=linux",
            "GOAMD64=v1",
        ],
        execution_dependencies=[f":{name}-src"],
        output_files=[binary],
        timeout=BUILD_STEP_TIMEOUT,
    )


def static_binary_images(binary, images, binary_target=":bin"):
    """`binary` in /usr/local/bin as one layer, and an image running it for each `name: base`."""
    oci_layer(name="layer", contents=[binary_target], destination="/usr/local/bin", file_mode="0755")
    for name, base in images.items():
        oci_image(name=name, base=base, layers=[":layer"], entrypoint=[f"/usr/local/bin/{binary}"])
