"""Target types of the `pants_oci` backend: `apk_layer`, `oci_layer` and `oci_image`."""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Sequence, Tuple

from ocibuild.common.architectures import ALPINE_ARCHS, OCI_ARCH_NAMES, alpine_arch
from ocibuild.contract import LAYER_COMPRESSIONS
from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    DictStringToStringField,
    Field,
    InvalidFieldException,
    SingleSourceField,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.docutil import bin_name
from pants.util.strutil import help_text
from pants_oci.subsystems.registries import ALL_DEFAULT_REGISTRIES


def _invalid(field: type, address: Address, value: Any, allowed: str) -> InvalidFieldException:
    return InvalidFieldException(
        f"The {field.alias!r} field in target {address} is {value!r}: {allowed}"  # type: ignore[attr-defined]
    )


def normalise_architectures(
    field: type, raw: Optional[Tuple[str, ...]], address: Address
) -> Optional[Tuple[str, ...]]:
    """Alpine names (what the lockfiles and the core use), accepting OCI names as well."""
    if raw is None:
        return None
    out: list = []
    for arch in raw:
        name = alpine_arch(arch)
        if name is None:
            allowed = ", ".join(ALPINE_ARCHS) + " (or OCI " + ", ".join(sorted(OCI_ARCH_NAMES)) + ")"
            raise _invalid(field, address, arch, f"an architecture must be one of {allowed}.")
        if name not in out:
            out.append(name)
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# apk_layer
# --------------------------------------------------------------------------------------------------


class ApkLockfileField(SingleSourceField):
    alias = "lockfile"
    required = False  # SingleSourceField is required by default, which would ignore `default`
    default = "apko.lock.json"
    expected_file_extensions = (".json",)
    help = help_text(
        """
        The pinned APK lockfile (apko.lock.json format, written by `pants generate-lockfiles`)
        that this layer installs from.
        """
    )

    def validate_resolved_files(self, files: Sequence[str]) -> None:
        if not files:
            raise InvalidFieldException(
                f"{self.address}: the lockfile {self.file_path} does not exist: write it with "
                f"`{bin_name()} generate-lockfiles` (its spec must be in [apk].resolves), or fix `lockfile`."
            )
        super().validate_resolved_files(files)


class ApkPackagesField(StringSequenceField):
    alias = "packages"
    help = help_text(
        """
        Names of the lockfile's packages to install (their locked dependencies come along).
        Default: every package in the lockfile.
        """
    )


class ApkArchitecturesField(StringSequenceField):
    alias = "architectures"
    help = help_text(
        """
        APK architectures to build the layer for (e.g. `x86_64`, `aarch64`; OCI names such as
        `amd64`, `arm64`, `arm/v7` are accepted too). Default: every architecture the lockfile has.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[Tuple[str, ...]]:
        return normalise_architectures(cls, super().compute_value(raw_value, address), address)


class ApkAccountsField(Field):
    """Users and groups, as apko's `accounts`; kept as canonical JSON so the value is hashable."""

    alias = "accounts"
    default = None
    value: Optional[str]
    help = help_text(
        """
        Users and groups to add to /etc/passwd and /etc/group, in apko's `accounts` form, e.g.
        `{"users": [{"username": "nonroot", "uid": 65532, "gid": 65532, "home": "/home/nonroot"}],
        "groups": [{"groupname": "nonroot", "gid": 65532}]}`. Home directories are created,
        owned by the user.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        if not isinstance(value, dict) or not set(value) <= {"users", "groups"}:
            raise InvalidFieldException(
                f"The {cls.alias!r} field in target {address} must be a dict with keys "
                f"'users' and/or 'groups', got {value!r}."
            )
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ApkSkipScriptsOfField(StringSequenceField):
    alias = "skip_scripts_of"
    help = help_text(
        """
        Packages whose install scripts (.pre-install, .post-install, triggers...) are known to be
        safe to skip. Scripts are never run; a package that has one fails the build unless listed
        here.
        """
    )


class ApkAllowSetuidField(BoolField):
    alias = "allow_setuid"
    default = False
    help = "Allow setuid/setgid files in the layer (refused by default)."


class ApkLayerTarget(Target):
    alias = "apk_layer"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        ApkLockfileField,
        ApkPackagesField,
        ApkArchitecturesField,
        ApkAccountsField,
        ApkSkipScriptsOfField,
        ApkAllowSetuidField,
        OutputPathField,
    )
    help = help_text(
        """
        A reproducible tar layer per architecture, installed from a pinned APK lockfile.

        Every package is downloaded by the URL, sha256 and size in the lock (mirrors applied),
        re-verified against the lock's embedded keys, and installed in the lock's order inside a
        cached, hermetic process; install scripts are never run. `pants package` writes
        `<arch>/layer.tar.gz` and `<arch>/layer.json` (diff_id, digest, size, packages).

        Example (`images/static/BUILD`, its spec `apko.yaml` in `[apk].resolves`):

            apk_layer(
                name="packages",
                lockfile="apko.lock.json",   # written by `pants generate-lockfiles`
                packages=["ca-certificates-bundle", "tzdata"],  # default: the whole lock
                architectures=["x86_64"],    # default: every architecture of the lock
            )
        """
    )


# --------------------------------------------------------------------------------------------------
# oci_layer
# --------------------------------------------------------------------------------------------------


class OciLayerContentsField(SpecialCasedDependencies):
    alias = "contents"
    help = help_text(
        """
        Targets whose files become the layer: `file`/`files`/`relocated_files`/`resource` targets,
        code generators such as `shell_command`, and anything `pants package` can build (its
        artifacts are used).
        """
    )


class OciLayerDestinationField(StringField):
    alias = "destination"
    default = "/"
    help = "Absolute directory in the image where the files are placed (by their base names)."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        assert value is not None
        if not value.startswith("/") or ".." in value.split("/"):
            raise _invalid(cls, address, value, "it must be an absolute path (e.g. `/app/bin`) without `..`.")
        return value


class OciLayerFileModeField(StringField):
    alias = "file_mode"
    default = None
    help = "Octal mode for the files, e.g. `0755`. Default: 0755 if executable, else 0644."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not re.fullmatch(r"[0-7]{3,4}", value):
            raise _invalid(
                cls, address, value, "it must be an octal mode string from 0000 to 7777, e.g. `0755`."
            )
        return value


class OciLayerOwnerField(StringField):
    alias = "owner"
    default = "0:0"
    help = "Numeric `uid:gid` owning the files."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        assert value is not None
        if not re.fullmatch(r"[0-9]+:[0-9]+", value):
            raise _invalid(cls, address, value, "it must be numeric `uid:gid`, e.g. `65532:65532`.")
        return value


class OciLayerTarget(Target):
    alias = "oci_layer"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        OciLayerContentsField,
        OciLayerDestinationField,
        OciLayerFileModeField,
        OciLayerOwnerField,
        OutputPathField,
    )
    help = help_text(
        """
        A reproducible, architecture-independent tar layer made of files and built packages of
        other targets, placed under `destination` (by base name) with the given mode and owner;
        every entry has the same mtime (`[oci].source_date_epoch`, default 0).

        Example:

            go_binary(name="bin")
            oci_layer(
                name="app",
                contents=[":bin", "//config:files"],  # packageable targets and file/resource targets
                destination="/usr/local/bin",
                file_mode="0755",                     # default: 0755 if executable, else 0644
                owner="65532:65532",                  # default: 0:0
            )
        """
    )


# --------------------------------------------------------------------------------------------------
# oci_image
# --------------------------------------------------------------------------------------------------


class OciImageBaseField(SpecialCasedDependencies):
    alias = "base"
    help = "An `oci_image` target to build on, e.g. `//images/static:static`. Default: none (scratch)."

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[Tuple[str, ...]]:
        if isinstance(raw_value, str):
            raw_value = [raw_value]
        value = super().compute_value(raw_value, address)
        if value and len(value) > 1:
            raise InvalidFieldException(
                f"The {cls.alias!r} field in target {address} names {len(value)} images; an image has at most one base."
            )
        return value


class OciImageLayersField(SpecialCasedDependencies):
    alias = "layers"
    help = help_text(
        """
        Layer targets stacked in this order over the base: `apk_layer`, `oci_layer`, or any target
        kind a plugin registers as a member of the `OciLayerFieldSet` union.
        """
    )


class OciImageEntrypointField(StringSequenceField):
    alias = "entrypoint"
    help = help_text(
        """
        The image's entrypoint (inherited from the base when unset). Setting it without `cmd`
        drops the base's `cmd`, as Docker's ENTRYPOINT does: those were arguments for the base's
        entrypoint.
        """
    )


class OciImageCmdField(StringSequenceField):
    alias = "cmd"
    help = help_text(
        """
        The image's default arguments to the entrypoint (inherited from the base when unset, and
        dropped when only `entrypoint` is set). Arguments after `--` of `pants run` replace them.
        """
    )


class OciImageEnvField(DictStringToStringField):
    alias = "env"
    help = help_text(
        """
        Environment variables, merged over the base's by name: the base's order is kept, a value
        replaced in place, new names appended in this field's order.
        """
    )


class OciImageUserField(StringField):
    alias = "user"
    help = "`user`, `uid` or `uid:gid` the image runs as (inherited from the base when unset)."


class OciImageWorkdirField(StringField):
    alias = "workdir"
    help = "Working directory (inherited from the base when unset)."


class OciImageLabelsField(DictStringToStringField):
    alias = "labels"
    help = "Config labels, merged over the base's by name (the base's own are kept)."


class OciImageAnnotationsField(DictStringToStringField):
    alias = "annotations"
    help = help_text(
        """
        Manifest annotations (e.g. `org.opencontainers.image.source`). The base's are not inherited;
        `org.opencontainers.image.base.digest` and `.base.name` are added when there is a base.
        """
    )


class OciImageExposedPortsField(StringSequenceField):
    alias = "exposed_ports"
    help = "Ports to expose: `N`, `N/tcp` or `N/udp` with N from 1 to 65535, e.g. `8080/tcp`."

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for port in value or ():
            match = re.fullmatch(r"([0-9]{1,5})(/tcp|/udp)?", port)
            if not match or not 1 <= int(match.group(1)) <= 65535:
                raise _invalid(
                    cls, address, port, "a port must be `N`, `N/tcp` or `N/udp` with N from 1 to 65535."
                )
        return value


class OciImageRepositoryField(StringField):
    alias = "repository"
    help = "Repository name of the image (default: the target's path and name, e.g. `images/static`)."


class OciImageArchitecturesField(StringSequenceField):
    alias = "architectures"
    help = help_text(
        """
        APK-style architectures (`x86_64`, `aarch64`, ...; OCI names such as `amd64`, `arm64`,
        `arm/v7` are accepted too) of the image. Default: those of the base and the `apk_layer`s;
        needed only for an image of plain-file layers on scratch.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[Tuple[str, ...]]:
        return normalise_architectures(cls, super().compute_value(raw_value, address), address)


class OciImageTagField(StringField):
    alias = "tag"
    default = "latest"
    help = "Tag recorded in the layout's index.json and the archives."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        assert value is not None
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", value):
            raise _invalid(
                cls, address, value, "a tag is 1-128 of A-Z a-z 0-9 _ . - and must not start with . or -."
            )
        return value


_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


class OciImageCompressionField(StringField):
    alias = "compression"
    default = "gzip"
    valid_choices = LAYER_COMPRESSIONS
    help = help_text(
        """
        How the image's own layers are stored: `gzip` (as the layer targets build them) or `zstd`
        (`application/vnd.oci.image.layer.v1.tar+zstd`, level 19: about 0.62x the size of gzip;
        read by podman and Docker >= 23, not by Docker 20.10, whose `docker load` gets the
        uncompressed docker-archive either way). The base's layers keep their encoding; the config
        and its diff_ids are the same with either (docs/oci-image.md).
        """
    )


class OciImageRegistriesField(StringSequenceField):
    alias = "registries"
    default = (ALL_DEFAULT_REGISTRIES,)
    help = help_text(
        """
        Registries `pants publish` pushes the image to: `@alias` names an
        `[oci.registries.<alias>]` table of pants.toml, anything else is a registry address
        (`host[:port][/path]`). Default: every registry marked `default = true`. The image goes to
        `<address>/<repository>:<tag>` for each of `tags` and the registry's `extra_image_tags`.
        An empty list publishes nothing.
        """
    )


class OciImageTagsField(StringSequenceField):
    alias = "tags"
    help = help_text(
        """
        Tags `pants publish` gives the image in each registry, moved only after the whole image
        (blobs, manifests, index, signatures) is in the registry. Default: the `tag` field's value.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for tag in value or ():
            if not _TAG.fullmatch(tag):
                raise _invalid(
                    cls, address, tag, "a tag is 1-128 of A-Z a-z 0-9 _ . - and must not start with . or -."
                )
        return value


class OciImageSkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = "If true, `pants publish` builds the image but pushes it nowhere."


class OciImageTarget(Target):
    alias = "oci_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        OciImageBaseField,
        OciImageLayersField,
        OciImageEntrypointField,
        OciImageCmdField,
        OciImageEnvField,
        OciImageUserField,
        OciImageWorkdirField,
        OciImageLabelsField,
        OciImageAnnotationsField,
        OciImageExposedPortsField,
        OciImageRepositoryField,
        OciImageTagField,
        OciImageArchitecturesField,
        OciImageCompressionField,
        OciImageRegistriesField,
        OciImageTagsField,
        OciImageSkipPushField,
        OutputPathField,
    )
    help = help_text(
        """
        A content-addressed OCI image: the layers stacked on an optional base `oci_image`.

        `pants package` writes an OCI image layout (`layout/`), an oci-archive (`image.oci.tar`,
        for `podman load`) and docker-archives (`image[-<arch>].docker.tar`, for `docker load`),
        and prints the image digest. Several architectures give an image index. `pants run` loads
        it into podman or docker and runs it; `pants publish` pushes it to `[oci].registries`.
        The config is the base's with these fields applied as a Dockerfile applies its
        instructions (see each field).

        Example:

            oci_image(
                name="hello",
                base="//images/static:static",   # default: none (scratch)
                layers=[":app"],                 # apk_layer, oci_layer or a plugin's layer targets
                entrypoint=["/usr/local/bin/hello"],
                user="65532:65532",
                env={"LANG": "C.UTF-8"},
                tag="latest",
            )
        """
    )


def target_types():
    return [ApkLayerTarget, OciLayerTarget, OciImageTarget]
