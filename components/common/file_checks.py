"""Checks on where a command will write, made before any slow work (loading a model,
compiling a pipeline), so a bad location costs a second and names the flag and the path.

Light on purpose: no TensorFlow imports. Local paths only; a URI (gs://...) is left to the
library that writes it.
"""

from __future__ import annotations

import os


class OutputPathError(ValueError):
    """A location a command cannot write to; the message names the flag, the path and why."""


def check_output_file(path: str, flag: str, *, inputs: tuple[str, ...] = ()) -> str:
    """The absolute path of a file a command is about to (re)write, after checking that its
    folder exists or can be created and is writable, that it is not a folder, and that it is
    not one of `inputs` (the same file through another name or a link included)."""
    if "://" in path:
        return path
    target = os.path.abspath(os.path.expanduser(path))
    for source in inputs:
        if source and source != "-" and "://" not in source and _same_file(source, target):
            raise OutputPathError(f"{flag} {path}: is the input file {source}; writing there would replace "
                                  "what is being read: choose another output")
    if os.path.isdir(target):
        raise OutputPathError(f"{flag} {path}: is a directory; give a file name")
    folder = os.path.dirname(target)
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputPathError(f"{flag} {path}: {existing} is a file, so the folder {folder} cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK) or _is_pseudo_filesystem(existing):
        raise OutputPathError(f"{flag} {path}: {existing} is not writable by this user")
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise OutputPathError(f"{flag} {path}: exists and is not writable by this user")
    return target


def check_output_dir(path: str, flag: str) -> str:
    """The absolute path of a folder a command writes into, created if needed; an
    OutputPathError naming the flag, the path and why it cannot be used."""
    target = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(target) and not os.path.isdir(target):
        raise OutputPathError(f"{flag} {target}: exists and is not a directory")
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"{flag} {target}: cannot create it: {e.strerror or e}") from None
    if not os.access(target, os.W_OK | os.X_OK) or _is_pseudo_filesystem(target):
        raise OutputPathError(f"{flag} {target}: not writable by this user")
    return target


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _is_pseudo_filesystem(path: str) -> bool:
    """/proc and /sys say writable to root but refuse new files."""
    real = os.path.realpath(path)
    return any(real == top or real.startswith(top + os.sep) for top in ("/proc", "/sys"))
