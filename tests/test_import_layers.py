"""The static import graph runs one way: config and the task registry at the bottom, models and
the shared components above them, the task packages above those, the pipeline on top; no
generic module (nor another task) imports a task package; and no package imports itself in a
circle. The task packages are the registry's (`pipeline/task_registry.py`): a new task needs no
edit here."""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
from rnnflow.pipeline.task_registry import TASKS

# "rnnflow.components.<package>.task:TASK" -> <package>
TASK_PACKAGES = {target.split(":")[0].split(".")[2] for target in TASKS.values()}


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


def test_the_task_packages_are_the_registrys_and_each_has_a_leaf_schema_module():
    # Every package with a task.py is registered, and every registered task has its package.
    assert TASK_PACKAGES == {name for name in os.listdir(os.path.join(ROOT, "components"))
                             if os.path.exists(os.path.join(ROOT, "components", name, "task.py"))}
    assert len(TASK_PACKAGES) >= 5
    for package in TASK_PACKAGES:
        schema = os.path.join(ROOT, "components", package, "schema.py")
        assert os.path.exists(schema), f"{package} has no schema.py"
        own = {m for m in imports(schema) if task_of(m) == package}
        assert not own, f"components/{package}/schema.py imports its own package: {own}"


def _package_graph() -> dict[str, dict[str, set[str]]]:
    """package folder -> module -> the modules of the same folder it imports (any depth)."""
    graphs: dict[str, dict[str, set[str]]] = {}
    for relative, path in ALL:
        folder, name = os.path.split(relative)
        module = "rnnflow." + relative[:-3].replace("/", ".")
        prefix = "rnnflow." + folder.replace("/", ".") + "."
        siblings = {m for m in imports(path) if m.startswith(prefix) and "." not in m[len(prefix):]}
        graphs.setdefault(folder, {})[module] = siblings - {module}
    return graphs


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node, path):
        state[node] = 1
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return path[path.index(child):] + [child] if child in path else [node, child]
            if state.get(child) is None:
                found = visit(child, path + [child])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node, [node])
            if found:
                return found
    return None


@pytest.mark.parametrize("folder", sorted(_package_graph()))
def test_no_package_imports_itself_in_a_circle(folder):
    cycle = _cycle(_package_graph()[folder])
    assert cycle is None, " -> ".join(cycle)


def test_the_circle_check_finds_circles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
