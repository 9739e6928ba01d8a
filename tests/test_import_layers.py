"""The static import graph runs one way: config and the task registry at the bottom, models and
the shared components above them, the task packages above those, the pipeline on top; and no
generic module (nor another task) imports a task package."""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
TASK_PACKAGES = {"forecasting", "language_model", "sequence_labeling", "text_classification"}


def modules():
    for package in ("pipeline", "components", "models"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def imports(path) -> set[str]:
    """Every rnnflow module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnflow"):
            folder = os.path.join(ROOT, *node.module.split(".")[1:])
            # `from rnnflow.pipeline import config`: the module imported is rnnflow.pipeline.config
            found |= {f"{node.module}.{a.name}" for a in node.names} if os.path.isdir(folder) else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnflow")}
    return found


def task_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "components" and parts[2] in TASK_PACKAGES else None


ALL = sorted(modules())


@pytest.mark.parametrize("relative, path", ALL, ids=[r for r, _ in ALL])
def test_each_module_imports_only_its_own_layer_and_those_below(relative, path):
    found = imports(path)
    if relative in ("pipeline/config.py", "pipeline/task_registry.py"):
        assert found <= {"rnnflow.pipeline.task_registry"}, found
    elif relative.startswith("models/"):
        assert all(m.startswith("rnnflow.models") or m == "rnnflow.pipeline.config" for m in found), found
    elif relative.startswith("components/"):
        assert not [m for m in found if m.startswith("rnnflow.pipeline") and
                    m not in ("rnnflow.pipeline.config", "rnnflow.pipeline.task_registry")], found
        own = relative.split("/")[1] if relative.split("/")[1] in TASK_PACKAGES else None
        foreign = {task_of(m) for m in found} - {None, own}
        assert not foreign, f"{relative} imports the {foreign} task package(s)"
    else:  # the pipeline layer: generic, so it names no task package either
        assert not {task_of(m) for m in found} - {None}, found
