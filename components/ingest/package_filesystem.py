"""`pkg://package/relative/path` as a TFX filesystem: files shipped inside an installed
Python package, resolved on the machine where the reading code runs.

Built-in configs point at data inside installed wheels (tfx's IMDB sample,
vega_datasets' weather). Compiled pipelines keep the `pkg://` URI, so a spec never
holds the compiling machine's site-packages path; TFX's ExampleGen driver (span
resolution, input fingerprints) and the executors read through `tfx.dsl.io.fileio`,
which dispatches the scheme here. Importing this module registers it; the pipeline
image imports it at interpreter start-up (see the Dockerfile), because TFX's own
driver process on Kubeflow never imports rnnflow.

This module must stay light: it is imported by every Python process in the image.
"""

from __future__ import annotations

from typing import Any

from tfx.dsl.io import filesystem, filesystem_registry

SCHEME = "pkg://"  # pipeline.config.PACKAGE_PATH_PREFIX; not imported, to keep this module light
_REGISTRY = filesystem_registry.DEFAULT_FILESYSTEM_REGISTRY


def local_path(path) -> str:
    """pkg://package/relative -> the file inside the installed package; other paths unchanged."""
    path = path.decode() if isinstance(path, bytes) else str(path)
    if not path.startswith(SCHEME):
        return path
    from importlib import resources

    package, _, relative = path[len(SCHEME):].partition("/")
    try:
        root = resources.files(package)
    except ModuleNotFoundError as e:
        raise filesystem.NotFoundError(f"{path}: package '{package}' is not installed") from e
    return str(root.joinpath(relative)) if relative else str(root)


def _package_uri(local: str, uri: str) -> str:
    """Maps a local result of a glob on `uri` back under the pkg:// prefix."""
    package = uri[len(SCHEME):].partition("/")[0]
    root = local_path(f"{SCHEME}{package}")
    return f"{SCHEME}{package}{local[len(root):]}" if local.startswith(root) else local


def _local(path):
    local = local_path(path)
    return local, _REGISTRY.get_filesystem_for_path(local)


class PackageFilesystem(filesystem.Filesystem):
    """Read access to package files through the filesystem that serves their local paths."""

    SUPPORTED_SCHEMES = [SCHEME]

    @staticmethod
    def open(name, mode: str = "r") -> Any:
        if any(flag in mode for flag in "wax+"):
            raise PermissionError(f"{name}: pkg:// files are read-only")
        local, fs = _local(name)
        return fs.open(local, mode)

    @staticmethod
    def exists(path) -> bool:
        try:
            local, fs = _local(path)
        except filesystem.NotFoundError:
            return False
        return fs.exists(local)

    @staticmethod
    def glob(pattern):
        pattern = pattern.decode() if isinstance(pattern, bytes) else pattern
        local, fs = _local(pattern)
        return [_package_uri(match, pattern) for match in fs.glob(local)]

    @staticmethod
    def isdir(path) -> bool:
        local, fs = _local(path)
        return fs.isdir(local)

    @staticmethod
    def listdir(path):
        local, fs = _local(path)
        return fs.listdir(local)

    @staticmethod
    def stat(path) -> Any:
        local, fs = _local(path)
        return fs.stat(local)

    @staticmethod
    def walk(top, topdown: bool = True, onerror=None):
        local, fs = _local(top)
        for root, dirs, files in fs.walk(local, topdown=topdown, onerror=onerror):
            yield _package_uri(root, top), dirs, files


_REGISTRY.register(PackageFilesystem, priority=20)
