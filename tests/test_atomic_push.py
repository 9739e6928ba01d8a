"""Pushes into the serving directory are atomic, strictly ordered, never overwrite, and prune safely
(components/serving/atomic_pusher.py)."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from rnnflow.components.serving import atomic_pusher
from rnnflow.components.serving.atomic_pusher import push, prune, versions

SIZES = {"saved_model.pb": 1 << 20, "variables/variables.data-00000-of-00001": 12 << 20,
         "variables/variables.index": 4096, "assets/tokens": 65536}


def _saved_model(root):
    """A directory shaped like a SavedModel, big enough that copying it takes a while."""
    for name, size in SIZES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return str(root)


# Polls `base` as TF Serving does (but far more often) and records every moment an integer
# version directory is visible without all of its files at their full size.
READER = textwrap.dedent("""
    import json, os, sys, time
    base, sizes, seconds, ready = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    incomplete, seen, polls = [], set(), 0
    end = time.time() + seconds
    open(ready, "w").close()
    while time.time() < end:
        polls += 1
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            continue
        for name in names:
            if not name.isdigit():
                continue
            seen.add(int(name))
            for file, size in sizes.items():
                try:
                    ok = os.path.getsize(os.path.join(base, name, file)) == size
                except FileNotFoundError:
                    ok = not os.path.exists(os.path.join(base, name))  # pruned meanwhile: fine
                if not ok:
                    incomplete.append([name, file])
    print(json.dumps({"incomplete": incomplete[:20], "seen": sorted(seen), "polls": polls}))
""")


def _poll_while(base, pushes, tmp_path):
    ready = tmp_path / "reader-ready"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(base), json.dumps(SIZES), "6", str(ready)],
                              stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not ready.exists():
        assert reader.poll() is None and time.time() < deadline, "the reader process did not start"
        time.sleep(0.01)
    pushed = pushes()
    out, _ = reader.communicate(timeout=60)
    return pushed, json.loads(out)


def test_a_polling_reader_never_sees_a_partial_version_and_versions_strictly_increase(tmp_path):
    model = _saved_model(tmp_path / "model")
    base = tmp_path / "serving" / "m"
    pushed, reader = _poll_while(base, lambda: [push(model, str(base)) for _ in range(8)], tmp_path)
    numbers = [int(os.path.basename(p)) for p in pushed]
    assert numbers == sorted(set(numbers)) and len(numbers) == 8  # 8 pushes in a few seconds: 8 versions
    assert reader["polls"] > 100 and reader["seen"]
    assert reader["incomplete"] == []
    assert sorted(os.listdir(base)) == sorted(str(n) for n in numbers)  # no staging left behind


def test_the_reader_does_catch_a_plain_copy_half_written(tmp_path):
    """The control: copying straight into the version directory, as TFX's Pusher does, is seen
    half-written by the same reader, so the test above can fail."""
    from tfx.utils import io_utils

    model = _saved_model(tmp_path / "model")
    base = tmp_path / "serving" / "m"

    def plain_pushes():
        # Copies for 3 seconds of the reader's 6 (at least 3), so a reader the machine's load
        # deschedules for a moment still polls during some copy.
        version, started = 0, time.time()
        while version < 3 or time.time() - started < 3.0:
            version += 1
            io_utils.copy_dir(model, str(base / str(version)))
        return []

    _, reader = _poll_while(base, plain_pushes, tmp_path)
    assert reader["incomplete"], "a plain copy should be visible half-written"


def test_same_second_and_clock_going_back_still_give_new_versions(tmp_path):
    model = _saved_model(tmp_path / "model")
    base = str(tmp_path / "serving")
    (tmp_path / "serving" / "4102444800").mkdir(parents=True)  # a version from 2100: a clock ahead
    (tmp_path / "serving" / "4102444800" / "saved_model.pb").write_bytes(b"old")
    first = push(model, base)
    second = push(model, base)
    assert os.path.basename(first) == "4102444801" and os.path.basename(second) == "4102444802"
    # The existing version is untouched.
    assert (tmp_path / "serving" / "4102444800" / "saved_model.pb").read_bytes() == b"old"
    assert atomic_pusher.next_version(base, now=5_000_000_000) == 5_000_000_000


def test_a_failed_copy_leaves_nothing_in_the_serving_directory(tmp_path, monkeypatch):
    model = _saved_model(tmp_path / "model")
    base = tmp_path / "serving"
    real_copytree, real_copy = atomic_pusher.shutil.copytree, atomic_pusher.shutil.copy2

    def failing_copy(src, dst, **kwargs):  # the disk fills up halfway through the variables
        if "variables.data" in src:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, **kwargs)

    def copytree(src, dst, symlinks=False, ignore=None, copy_function=None, *args):  # also its recursion
        return real_copytree(src, dst, symlinks, ignore, failing_copy, *args)

    monkeypatch.setattr(atomic_pusher.shutil, "copytree", copytree)
    with pytest.raises(Exception, match="No space left on device"):
        push(model, str(base))
    assert os.listdir(base) == []


def test_pushing_something_that_is_not_a_saved_model_names_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no saved_model.pb: not a SavedModel, nothing pushed"):
        push(str(tmp_path / "empty"), str(tmp_path / "serving"))
    assert not (tmp_path / "serving").exists() or os.listdir(tmp_path / "serving") == []


def test_keep_versions_prunes_the_oldest_and_only_integer_directories(tmp_path):
    model = _saved_model(tmp_path / "model")
    base = tmp_path / "serving"
    for _ in range(3):
        push(model, str(base))
    (base / "notes").mkdir()  # not a version: never touched
    kept = push(model, str(base), keep_versions=2)
    assert len(versions(str(base))) == 2 and versions(str(base))[-1] == int(os.path.basename(kept))
    assert sorted(n for n in os.listdir(base) if not n.isdigit()) == ["notes"]
    assert prune(str(base), 5) == []


def test_object_store_pushes_write_saved_model_last_and_order_versions(tmp_path):
    """ram:// stands in for gs:// (no rename there): files go straight into the version."""
    import tensorflow as tf

    model = _saved_model(tmp_path / "model")
    base = "ram://rnnflow-push-test/serving"
    first, second = push(model, base), push(model, base)
    assert int(second.rsplit("/", 1)[1]) == int(first.rsplit("/", 1)[1]) + 1
    for name, size in SIZES.items():
        assert tf.io.gfile.stat(f"{second}/{name}").length == size
