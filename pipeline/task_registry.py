"""The registered tasks: task type -> "module:attribute" of its `Task` object.

Adding a task is one line here (plus its package and its built-in config). The modules are
imported on first use (so loading a config imports no TensorFlow), which keeps the static import
graph one way: this module and `config` at the bottom, the tasks above, the pipeline on top.
"""

from __future__ import annotations

import importlib

TASKS = {
    "forecasting": "rnnflow.components.forecasting.task:TASK",
    "language_model": "rnnflow.components.language_model.task:TASK",
    "sequence_labeling": "rnnflow.components.sequence_labeling.task:TASK",
    "text_classification": "rnnflow.components.text_classification.task:TASK",
    "translation": "rnnflow.components.translation.task:TASK",
}


def task_names() -> list[str]:
    return sorted(TASKS)


def get_task(name: str):
    """The registered `rnnflow.components.tasks.Task` object of a task type."""
    module_name, _, attribute = TASKS[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)
