"""TFX's Pusher with pushes a polling TF Serving can never catch half-written.

TFX 1.16's Pusher copies the model straight into `<base>/<unix seconds>/` (saved_model.pb
last), so a model server polling every second can load a version whose variables are still
being copied, and two pushes in the same second collide (the second is skipped). Here:

- On a local (POSIX) filesystem the version is written under a name TF Serving ignores
  (`.staging-<version>-<random>`: not an integer), then renamed into its integer version
  directory in one `rename`: a reader sees no version or a complete one. If the version was
  taken meanwhile (another push), the next number is tried.
- On object stores (gs://, s3://, where rename is a copy) the files are written into the
  version directory with `saved_model.pb` last, as TFX does; TF Serving only loads a version
  once its saved_model.pb exists.
- Versions strictly increase: max(unix seconds, newest existing version + 1), so two pushes in
  one second get two versions and a clock that went back never reuses a number. An existing
  version is never overwritten.
- `serving.keep_versions: N` removes all but the newest N versions after a push; a removed
  version is first renamed out of TF Serving's sight, then deleted.
- On failure the staging directory is removed: nothing half-written is left behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import uuid

from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from rnnflow.components.common import interrupts

STAGING_PREFIX = ".staging-"  # not an integer: TF Serving's version scan skips it
REMOVING_PREFIX = ".removing-"
SAVED_MODEL_FILE = "saved_model.pb"
KEEP_VERSIONS_PROPERTY = "keep_versions"


def versions(base_dir: str) -> list[int]:
    """The integer version directories under `base_dir`, oldest first (what TF Serving sees)."""
    if not fileio.exists(base_dir):
        return []
    names = [name.rstrip("/") for name in fileio.listdir(base_dir)]
    return sorted(int(name) for name in names if name.isdigit())


def next_version(base_dir: str, now: float | None = None) -> int:
    existing = versions(base_dir)
    return max(int(time.time() if now is None else now), (existing[-1] + 1) if existing else 0)


def push(model_dir: str, base_dir: str, keep_versions: int | None = None) -> str:
    """Copies the SavedModel in `model_dir` into a new version directory under `base_dir` (see
    the module docstring); returns the version directory."""
    if not fileio.exists(os.path.join(model_dir, SAVED_MODEL_FILE)):
        raise FileNotFoundError(f"{model_dir}: no {SAVED_MODEL_FILE}: not a SavedModel, nothing pushed")
    fileio.makedirs(base_dir)
    pushed = _push_local(model_dir, base_dir) if _is_local(base_dir) else _push_remote(model_dir, base_dir)
    if keep_versions:
        prune(base_dir, keep_versions)
    return pushed


def _is_local(path: str) -> bool:
    return "://" not in path


def _push_local(model_dir: str, base_dir: str) -> str:
    staging = os.path.join(base_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    try:
        shutil.copytree(model_dir, staging)
        _fsync_tree(staging)
        version = next_version(base_dir)
        while True:
            target = os.path.join(base_dir, str(version))
            if not os.path.exists(target):
                interrupts.check("before the push")  # the version becomes visible below
                try:
                    os.rename(staging, target)  # atomic on one POSIX filesystem
                    return target
                except OSError as e:  # taken between the check and the rename
                    if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            version += 1
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _push_remote(model_dir: str, base_dir: str) -> str:
    version = next_version(base_dir)
    while fileio.exists(os.path.join(base_dir, str(version))):
        version += 1
    target = os.path.join(base_dir, str(version))
    try:
        io_utils.copy_dir(model_dir, target, deny_regex_patterns=[r"saved_model\.pb"])
        interrupts.check("before the push")  # saved_model.pb makes the version loadable
        io_utils.copy_file(os.path.join(model_dir, SAVED_MODEL_FILE), os.path.join(target, SAVED_MODEL_FILE))
    except BaseException:  # a stop request (KeyboardInterrupt) too
        if fileio.exists(target) and not fileio.exists(os.path.join(target, SAVED_MODEL_FILE)):
            fileio.rmtree(target)  # without saved_model.pb TF Serving never loaded it
        raise
    return target


def prune(base_dir: str, keep: int) -> list[int]:
    """Removes all but the newest `keep` versions; returns the removed version numbers."""
    removed = versions(base_dir)[:-keep] if keep > 0 else []
    for version in removed:
        path = os.path.join(base_dir, str(version))
        if _is_local(base_dir):
            hidden = os.path.join(base_dir, f"{REMOVING_PREFIX}{version}-{uuid.uuid4().hex}")
            os.rename(path, hidden)  # gone from TF Serving's scan in one step
            shutil.rmtree(hidden)
        else:
            fileio.remove(os.path.join(path, SAVED_MODEL_FILE))  # unloadable first
            fileio.rmtree(path)
    return removed


def _fsync_tree(root: str) -> None:
    """Flushes the copied files before the rename makes them visible (a crash after the
    rename must not leave a version whose files are still only in the page cache)."""
    for directory, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                os.fsync(f.fileno())


class _Executor(pusher_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        custom_config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}")
        keep_versions = custom_config.get(KEEP_VERSIONS_PROPERTY)
        serving_path = push(model_path, destination.filesystem.base_directory, keep_versions)
        io_utils.copy_dir(model_path, model_push.uri)  # the artifact's own copy, as TFX keeps it
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=os.path.basename(serving_path))


class Pusher(tfx.components.Pusher):
    """TFX's Pusher (same inputs, outputs and MLMD properties) with atomic, ordered pushes and
    `keep_versions` pruning (`custom_config={"keep_versions": N}`)."""
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(_Executor)
